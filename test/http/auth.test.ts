/**
 * The auth matrix over real HTTP: every permission, inside and outside the key's
 * prefixes, plus missing and unknown keys, public-read prefixes and bad configuration.
 */
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { SignJWT } from 'jose';
import { after, before, describe, it } from 'node:test';
import type { FastifyInstance } from 'fastify';
import { Authenticator, buildApp, createStorage, StorageError, type Storage } from '../../src/index.js';

const ALICE = 'alice-key-0123456789abcdef';
const BOB = 'bob-key-0123456789abcdef00';
const READER = 'reader-key-0123456789abcdef';
let app: FastifyInstance;
let base: string;
let storage: Storage;

before(async () => {
  storage = createStorage({ driver: 'memory', baseUrl: 'http://127.0.0.1:1', signingSecret: 'auth-test-secret-0123456789' });
  const auth = new Authenticator({
    keys: [
      { key: ALICE, identity: 'alice', prefixes: ['users/{userId}/'], permissions: ['read', 'write', 'delete', 'list', 'presign'] },
      { key: BOB, identity: 'bob', prefixes: ['users/{userId}/'], permissions: ['read', 'write', 'delete', 'list', 'presign'] },
      { key: READER, identity: 'reader', prefixes: ['users/'], permissions: ['read'] },
    ],
    publicRead: ['public/'],
  });
  app = await buildApp({ storage, auth, logger: false, signingSecret: 'auth-test-secret-0123456789' });
  base = await app.listen({ host: '127.0.0.1', port: 0 });
  await storage.put('users/alice/photo.jpg', 'alice photo');
  await storage.put('users/bob/photo.jpg', 'bob photo');
  await storage.put('public/logo.png', 'logo');
});
after(async () => app?.close());

function call(method: string, path: string, key?: string, body?: unknown): Promise<Response> {
  const headers: Record<string, string> = {};
  if (key) headers.authorization = `Bearer ${key}`;
  if (body !== undefined && typeof body !== 'string') headers['content-type'] = 'application/json';
  return fetch(`${base}${path}`, { method, headers, body: typeof body === 'string' || body === undefined ? body : JSON.stringify(body) });
}

describe('http auth', () => {
  it('answers missing and unknown keys with 401', async () => {
    const missing = await call('GET', '/api/objects/users/alice/photo.jpg');
    assert.equal(missing.status, 401);
    assert.equal(missing.headers.get('www-authenticate'), 'Bearer');
    assert.equal(((await missing.json()) as { error: { code: string } }).error.code, 'E_UNAUTHENTICATED');
    assert.equal((await call('GET', '/api/objects/users/alice/photo.jpg', 'not-a-real-key-at-all')).status, 401);
  });

  const matrix: [string, string, string, unknown, number, number][] = [
    // permission, method, path (own / other user's is derived), body, status inside, status outside
    ['read', 'GET', '/api/objects/users/{u}/photo.jpg', undefined, 200, 403],
    ['read (HEAD)', 'HEAD', '/api/objects/users/{u}/photo.jpg', undefined, 200, 403],
    ['write', 'PUT', '/api/objects/users/{u}/new.txt', 'data', 201, 403],
    ['list', 'GET', '/api/objects?prefix=users/{u}/', undefined, 200, 403],
    ['presign', 'POST', '/api/presign', 'presign', 200, 403],
    ['delete', 'DELETE', '/api/objects/users/{u}/new.txt', undefined, 204, 403],
  ];
  for (const [permission, method, path, body, inside, outside] of matrix) {
    it(`${permission}: allowed in alice's own prefix, refused in bob's`, async () => {
      const payload = (u: string) => (body === 'presign' ? { key: `users/${u}/photo.jpg`, method: 'GET' } : body);
      const own = await call(method, path.replace('{u}', 'alice'), ALICE, payload('alice'));
      assert.equal(own.status, inside, `${method} ${path} as alice in her prefix`);
      const other = await call(method, path.replace('{u}', 'bob'), ALICE, payload('bob'));
      assert.equal(other.status, outside, `${method} ${path} as alice in bob's prefix`);
    });
  }

  it('refuses what a key lacks the permission for, even inside its prefixes', async () => {
    assert.equal((await call('GET', '/api/objects/users/bob/photo.jpg', READER)).status, 200);
    assert.equal((await call('PUT', '/api/objects/users/bob/x.txt', READER, 'x')).status, 403);
    assert.equal((await call('DELETE', '/api/objects/users/bob/photo.jpg', READER)).status, 403);
    assert.equal((await call('GET', '/api/objects?prefix=users/', READER)).status, 403);
    assert.equal((await call('POST', '/api/presign', READER, { key: 'users/bob/photo.jpg', method: 'GET' })).status, 403);
    assert.equal((await call('POST', '/api/presign', ALICE, { key: 'users/alice/up.txt', method: 'PUT' })).status, 200);
    assert.equal(await storage.exists('users/bob/x.txt'), false);
  });

  it('refuses listings wider than the key may see', async () => {
    assert.equal((await call('GET', '/api/objects', ALICE)).status, 403);
    assert.equal((await call('GET', '/api/objects?prefix=users/', ALICE)).status, 403);
    assert.equal((await call('GET', '/api/objects?prefix=users/al', ALICE)).status, 403);
  });

  it('serves public-read prefixes anonymously, for reading only', async () => {
    assert.equal(await (await call('GET', '/api/objects/public/logo.png')).text(), 'logo');
    assert.equal((await call('PUT', '/api/objects/public/evil.png', undefined, 'x')).status, 401);
    assert.equal((await call('GET', '/api/objects/users/alice/photo.jpg')).status, 401);
  });

  it('refuses bad configuration, naming the problem', () => {
    assert.throws(() => new Authenticator({ keys: [{ key: 'short', identity: 'a', prefixes: ['x/'], permissions: ['read'] }] }), (e: unknown) => e instanceof StorageError && /at least 16 characters/.test(e.message));
    assert.throws(() => new Authenticator({ keys: [{ key: ALICE, identity: 'a/b', prefixes: ['x/'], permissions: ['read'] }] }), /identity must be one key segment/);
    assert.throws(() => new Authenticator({ keys: [{ key: ALICE, identity: 'a', prefixes: ['../x/'], permissions: ['read'] }] }), /prefix/);
    assert.throws(() => new Authenticator({ keys: [{ key: ALICE, identity: 'a', prefixes: ['x/'], permissions: ['admin' as 'read'] }] }), /permissions/);
    assert.throws(() => Authenticator.fromEnv({ STOWAGE_AUTH: '{not json' }), /invalid STOWAGE_AUTH/);
    assert.equal(Authenticator.fromEnv({}), undefined);
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
