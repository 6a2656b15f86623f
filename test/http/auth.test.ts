/**
 * HTTP auth: the API-key matrix on the fs backend (the S3 run is in s3.test.ts),
 * bad auth configuration, and JWTs.
 */
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SignJWT } from 'jose';
import { after, before, describe, it } from 'node:test';
import type { FastifyInstance } from 'fastify';
import { Authenticator, buildApp, createStorage, StorageError, type AuthConfig } from '../../src/index.js';
import { ALICE, describeAuthMatrix } from './auth-matrix.js';

describeAuthMatrix('fs', async () => createStorage({ driver: 'fs', root: await mkdtemp(join(tmpdir(), 'stowage-auth-')), baseUrl: 'http://127.0.0.1:1', signingSecret: 'auth-test-secret-0123456789' }));

describe('http auth configuration', () => {
  it('refuses bad configuration, naming the problem', () => {
    assert.throws(() => new Authenticator({ keys: [{ key: 'short', identity: 'a', prefixes: ['x/'], permissions: ['read'] }] }), (e: unknown) => e instanceof StorageError && /at least 16 characters/.test(e.message));
    assert.throws(() => new Authenticator({ keys: [{ key: ALICE, identity: 'a/b', prefixes: ['x/'], permissions: ['read'] }] }), /identity must be one key segment/);
    assert.throws(() => new Authenticator({ keys: [{ key: ALICE, identity: 'a', prefixes: ['../x/'], permissions: ['read'] }] }), /prefix/);
    assert.throws(() => new Authenticator({ keys: [{ key: ALICE, identity: 'a', prefixes: ['x/'], permissions: ['admin' as 'read'] }] }), /permissions/);
    assert.throws(() => Authenticator.fromEnv({ STOWAGE_AUTH: '{not json' }), /invalid STOWAGE_AUTH/);
    assert.equal(Authenticator.fromEnv({}), undefined);
  });

  it('refuses API-key identities the key rules would refuse as a segment, or not in NFC, naming the entry', () => {
    const withIdentity = (identity: string) => () => new Authenticator({ keys: [{ key: ALICE, identity: 'ok', prefixes: ['x/{userId}/'], permissions: ['read'] }, { key: `${ALICE}-2`, identity, prefixes: ['x/{userId}/'], permissions: ['read'] }] });
    for (const [identity, problem] of [
      ['jose\u0301', /not in Unicode NFC form/],
      ['a\u007fb', /control character/],
      ['a\u0085b', /control character/],
      ['a\ud800b', /unpaired UTF-16 surrogate/],
      ['x'.repeat(256), /longer than 255 bytes/],
      ['..', /relative path part/],
      ['', /empty/],
    ] as const) {
      assert.throws(withIdentity(identity), (e: unknown) => e instanceof StorageError && e.code === 'E_CONFIG_INVALID' && /keys\.1\.identity/.test(e.message) && problem.test(e.message), JSON.stringify(identity));
    }
    assert.doesNotThrow(withIdentity('jos\u00e9'));
  });

  it('validates which service endpoints are public, and that keys for objects have prefixes', () => {
    assert.throws(() => new Authenticator({ public: ['admin' as 'docs'] }), (e: unknown) => e instanceof StorageError && e.code === 'E_CONFIG_INVALID' && /public/.test(e.message));
    assert.throws(() => new Authenticator({ keys: [{ key: ALICE, identity: 'a', permissions: ['read'] }] }), /keys\.0\.prefixes: a key with read, write, delete, list or presign needs at least one prefix/);
    assert.doesNotThrow(() => new Authenticator({ keys: [{ key: ALICE, identity: 'prometheus', permissions: ['metrics'] }], public: ['docs'] }));
  });
});

describe('http auth: /metrics, /docs and /openapi.json', () => {
  const OPS = 'ops-metrics-key-0123456789abcdef';
  const DOCS = 'docs-reader-key-0123456789abcdef';
  const docsPaths = ['/openapi.json', '/docs', '/docs/json', '/docs/yaml', '/docs/static/swagger-initializer.js'];

  async function serve(config: AuthConfig, check: (get: (path: string, key?: string) => Promise<Response>) => Promise<void>): Promise<void> {
    const app = await buildApp({ storage: createStorage({ driver: 'memory' }), auth: new Authenticator(config), logger: false });
    try {
      const base = await app.listen({ host: '127.0.0.1', port: 0 });
      await check((path, key) => fetch(`${base}${path}`, { headers: key ? { authorization: `Bearer ${key}` } : {} }));
    } finally {
      await app.close();
    }
  }
  const keys: AuthConfig['keys'] = [
    { key: ALICE, identity: 'alice', prefixes: ['users/{userId}/'], permissions: ['read', 'write', 'list', 'presign'] },
    { key: OPS, identity: 'prometheus', permissions: ['metrics'] },
    { key: DOCS, identity: 'developer', permissions: ['docs'] },
  ];

  const errorOf = async (res: Response) => ((await res.json()) as { error: { code: string; message: string } }).error;

  it('need a key with the metrics or docs permission once auth is configured', async () => {
    await serve({ keys }, async (get) => {
      for (const [path, allowedKey] of [['/metrics', OPS], ...docsPaths.map((p) => [p, DOCS])] as const) {
        const anonymous = await get(path);
        assert.equal(anonymous.status, 401, `${path} without a key`);
        assert.equal(anonymous.headers.get('www-authenticate'), 'Bearer');
        assert.equal((await errorOf(anonymous)).code, 'E_UNAUTHENTICATED');
        const wrong = await get(path, allowedKey === OPS ? DOCS : OPS);
        assert.equal(wrong.status, 403, `${path} with a key for the other endpoint`);
        assert.equal((await errorOf(wrong)).message, `This needs a key with the ${allowedKey === OPS ? 'metrics' : 'docs'} permission.`);
        assert.equal((await get(path, ALICE)).status, 403, `${path} with an object key`);
        assert.equal((await get(path, 'not-a-key-of-this-service')).status, 401, `${path} with an unknown key`);
        const allowed = await get(path, allowedKey);
        assert.equal(allowed.status, 200, `${path} with its key`);
        await allowed.arrayBuffer();
      }
      assert.match(await (await get('/metrics', OPS)).text(), /stowage_http_requests_total/);
      assert.equal((await get('/health')).status, 200, 'liveness stays open');
    });
  });

  it('are open to anyone when the configuration makes them public', async () => {
    await serve({ keys, public: ['metrics', 'docs'] }, async (get) => {
      for (const path of ['/metrics', ...docsPaths]) assert.equal((await get(path)).status, 200, path);
    });
    await serve({ keys, public: ['docs'] }, async (get) => {
      assert.equal((await get('/openapi.json')).status, 200);
      assert.equal((await get('/metrics')).status, 401, 'only what is listed');
    });
  });
});

describe('http auth with JWTs', () => {
  const hsSecret = 'jwt-hs256-secret-0123456789abcdef0123';
  const { publicKey, privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  let jwtApp: FastifyInstance;
  let jwtBase: string;

  before(async () => {
    const s = createStorage({ driver: 'memory' });
    await s.put('users/u7/a.txt', 'mine');
    await s.put('users/u8/a.txt', 'theirs');
    const auth = new Authenticator({ jwt: { secret: hsSecret, claim: 'sub', issuer: 'my-app', prefixes: ['users/{userId}/'], permissions: ['read', 'write'] } });
    jwtApp = await buildApp({ storage: s, auth, logger: false });
    jwtBase = await jwtApp.listen({ host: '127.0.0.1', port: 0 });
  });
  after(async () => jwtApp?.close());

  const hs = (claims: Record<string, unknown>, opts: { exp?: string; secret?: string; issuer?: string } = {}) =>
    new SignJWT(claims).setProtectedHeader({ alg: 'HS256' }).setIssuer(opts.issuer ?? 'my-app').setExpirationTime(opts.exp ?? '5m').sign(new TextEncoder().encode(opts.secret ?? hsSecret));
  const get = async (path: string, token: string) => (await fetch(`${jwtBase}${path}`, { headers: { authorization: `Bearer ${token}` } })).status;

  it('maps the claim to the identity and its prefixes', async () => {
    const token = await hs({ sub: 'u7' });
    assert.equal(await get('/api/objects/users/u7/a.txt', token), 200);
    assert.equal(await get('/api/objects/users/u8/a.txt', token), 403);
  });

  it('refuses expired, badly signed, foreign and claim-less tokens with 401', async () => {
    assert.equal(await get('/api/objects/users/u7/a.txt', await hs({ sub: 'u7' }, { exp: '-1m' })), 401);
    assert.equal(await get('/api/objects/users/u7/a.txt', await hs({ sub: 'u7' }, { secret: 'another-secret-0123456789abcdef0123' })), 401);
    assert.equal(await get('/api/objects/users/u7/a.txt', await hs({ sub: 'u7' }, { issuer: 'someone-else' })), 401);
    assert.equal(await get('/api/objects/users/u7/a.txt', await hs({ name: 'no sub' })), 401);
    assert.equal(await get('/api/objects/users/u7/a.txt', await hs({ sub: '../u8' })), 401);
  });

  it('refuses tokens without an exp claim unless requireExp is false', async () => {
    const forever = await new SignJWT({ sub: 'u7' }).setProtectedHeader({ alg: 'HS256' }).setIssuer('my-app').sign(new TextEncoder().encode(hsSecret));
    const refused = await fetch(`${jwtBase}/api/objects/users/u7/a.txt`, { headers: { authorization: `Bearer ${forever}` } });
    assert.equal(refused.status, 401);
    assert.match(((await refused.json()) as { error: { message: string } }).error.message, /"exp" claim/);
    const lenient = new Authenticator({ jwt: { secret: hsSecret, issuer: 'my-app', requireExp: false, prefixes: ['users/{userId}/'], permissions: ['read'] } });
    assert.equal((await lenient.authenticate(`Bearer ${forever}`)).identity, 'u7');
    await assert.rejects(lenient.authenticate(`Bearer ${await hs({ sub: 'u7' }, { exp: '-1m' })}`), /refused/, 'an exp that is there is still checked');
    assert.throws(() => new Authenticator({ jwt: { secret: hsSecret, requireExp: 'no' as never, prefixes: ['x/'], permissions: ['read'] } }), /requireExp/);
  });

  it('refuses identities that are not one NFC key segment with 401, never folding two users into one folder', async () => {
    const s = createStorage({ driver: 'memory' });
    const auth = new Authenticator({ jwt: { secret: hsSecret, issuer: 'my-app', prefixes: ['tenants/{userId}/'], permissions: ['read', 'write', 'delete', 'list'] } });
    const tenantApp = await buildApp({ storage: s, auth, logger: false });
    try {
      const tenantBase = await tenantApp.listen({ host: '127.0.0.1', port: 0 });
      const call = async (method: string, token: string, body?: string) => (await fetch(`${tenantBase}/api/objects/tenants/jos%C3%A9/file.txt`, { method, body, headers: { authorization: `Bearer ${token}` } })).status;
      const composed = await hs({ sub: 'jos\u00e9' });
      assert.equal(await call('PUT', composed, 'first user'), 201);
      const decomposed = await hs({ sub: 'jose\u0301' });
      assert.equal(await call('GET', decomposed), 401, 'the decomposed spelling cannot read');
      assert.equal(await call('PUT', decomposed, 'second user'), 401, 'nor overwrite');
      assert.equal(await call('DELETE', decomposed), 401, 'nor delete');
      assert.equal((await s.get('tenants/jos\u00e9/file.txt')).toString(), 'first user');
      for (const sub of ['a\u007fb', 'a\u0085b', 'a\ud800b', 'x'.repeat(256), '..', 'a/b', '']) {
        const res = await fetch(`${tenantBase}/api/objects?prefix=tenants/`, { headers: { authorization: `Bearer ${await hs({ sub })}` } });
        assert.equal(res.status, 401, JSON.stringify(sub));
        const error = ((await res.json()) as { error: { code: string; message: string } }).error;
        assert.equal(error.code, 'E_UNAUTHENTICATED');
        assert.match(error.message, /"sub" claim is not a usable identity/);
      }
      assert.equal(await call('GET', await hs({ sub: 'jos\u00e9' })), 200);
    } finally {
      await tenantApp.close();
    }
  });

  it('verifies RS256 tokens with a public key', async () => {
    const pem = publicKey.export({ type: 'spki', format: 'pem' }).toString();
    const auth = new Authenticator({ jwt: { publicKey: pem, claim: 'uid', prefixes: ['users/{userId}/'], permissions: ['read'] } });
    const token = await new SignJWT({ uid: 'u9' }).setProtectedHeader({ alg: 'RS256' }).setExpirationTime('5m').sign(privateKey);
    const principal = await auth.authenticate(`Bearer ${token}`);
    assert.equal(principal.identity, 'u9');
    assert.deepEqual(principal.prefixes, ['users/u9/']);
    const forged = await new SignJWT({ uid: 'u9' }).setProtectedHeader({ alg: 'HS256' }).sign(new TextEncoder().encode('x'.repeat(40)));
    await assert.rejects(auth.authenticate(`Bearer ${forged}`), /refused/);
  });

  it('requires exactly one of secret or publicKey', () => {
    assert.throws(() => new Authenticator({ jwt: { prefixes: ['x/'], permissions: ['read'] } }), /exactly one of secret/);
    assert.throws(() => new Authenticator({ jwt: { secret: 'short', prefixes: ['x/'], permissions: ['read'] } }), /at least 32 characters/);
  });
});
