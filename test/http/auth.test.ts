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
import { Authenticator, buildApp, createStorage, StorageError } from '../../src/index.js';
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
