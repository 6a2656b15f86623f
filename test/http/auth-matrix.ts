/**
 * The API-key auth matrix over real HTTP, as a suite any backend runs: every
 * permission inside and outside the key's prefixes, missing and unknown keys,
 * public-read prefixes. The routes do not depend on the backend, but the matrix
 * runs on each one so that a backend's own errors (an S3 404 for a foreign key, say)
 * can never leak through as something other than the auth answer.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { FastifyInstance } from 'fastify';
import { Authenticator, buildApp, type Storage } from '../../src/index.js';

/** Alice's API key: read, write, delete, list and presign in `users/alice/`. */
export const ALICE = 'alice-key-0123456789abcdef';
const BOB = 'bob-key-0123456789abcdef00';
const READER = 'reader-key-0123456789abcdef';
const SIGNING_SECRET = 'auth-test-secret-0123456789';

/** Registers the matrix for one backend; `makeStorage` builds a fresh, empty storage. */
export function describeAuthMatrix(backend: string, makeStorage: () => Promise<Storage>): void {
  let app: FastifyInstance;
  let base: string;
  let storage: Storage;

  function call(method: string, path: string, key?: string, body?: unknown): Promise<Response> {
    const headers: Record<string, string> = {};
    if (key) headers.authorization = `Bearer ${key}`;
    if (body !== undefined && typeof body !== 'string') headers['content-type'] = 'application/json';
    return fetch(`${base}${path}`, { method, headers, body: typeof body === 'string' || body === undefined ? body : JSON.stringify(body) });
  }

  describe(`http auth matrix (${backend} backend)`, () => {
    before(async () => {
      storage = await makeStorage();
      const auth = new Authenticator({
        keys: [
          { key: ALICE, identity: 'alice', prefixes: ['users/{userId}/'], permissions: ['read', 'write', 'delete', 'list', 'presign'] },
          { key: BOB, identity: 'bob', prefixes: ['users/{userId}/'], permissions: ['read', 'write', 'delete', 'list', 'presign'] },
          { key: READER, identity: 'reader', prefixes: ['users/'], permissions: ['read'] },
        ],
        publicRead: ['public/'],
      });
      app = await buildApp({ storage, auth, logger: false, signingSecret: SIGNING_SECRET });
      base = await app.listen({ host: '127.0.0.1', port: 0 });
      await storage.put('users/alice/photo.jpg', 'alice photo');
      await storage.put('users/bob/photo.jpg', 'bob photo');
      await storage.put('public/logo.png', 'logo');
    });
    after(async () => app?.close());

    it('answers missing and unknown keys with 401', async () => {
      const missing = await call('GET', '/api/objects/users/alice/photo.jpg');
      assert.equal(missing.status, 401);
      assert.equal(missing.headers.get('www-authenticate'), 'Bearer');
      assert.equal(((await missing.json()) as { error: { code: string } }).error.code, 'E_UNAUTHENTICATED');
      assert.equal((await call('GET', '/api/objects/users/alice/photo.jpg', 'not-a-real-key-at-all')).status, 401);
    });

    const matrix: [string, string, string, unknown, number, number][] = [
      // permission, method, path ({u} is alice, then bob), body, status inside, status outside
      ['read', 'GET', '/api/objects/users/{u}/photo.jpg', undefined, 200, 403],
      ['read (HEAD)', 'HEAD', '/api/objects/users/{u}/photo.jpg', undefined, 200, 403],
      ['read (missing object)', 'GET', '/api/objects/users/{u}/absent.jpg', undefined, 404, 403],
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

    it("never lets alice overwrite or delete bob's objects", async () => {
      assert.equal((await call('PUT', '/api/objects/users/bob/photo.jpg', ALICE, 'overwritten')).status, 403);
      assert.equal((await call('DELETE', '/api/objects/users/bob/photo.jpg', ALICE)).status, 403);
      assert.equal((await storage.get('users/bob/photo.jpg')).toString(), 'bob photo');
    });

    it('refuses what a key lacks the permission for, even inside its prefixes', async () => {
      assert.equal((await call('GET', '/api/objects/users/bob/photo.jpg', READER)).status, 200);
      assert.equal((await call('PUT', '/api/objects/users/bob/x.txt', READER, 'x')).status, 403);
      assert.equal((await call('DELETE', '/api/objects/users/bob/photo.jpg', READER)).status, 403);
      assert.equal((await call('GET', '/api/objects?prefix=users/', READER)).status, 403);
      assert.equal((await call('POST', '/api/presign', READER, { key: 'users/bob/photo.jpg', method: 'GET' })).status, 403);
      assert.equal((await call('POST', '/api/presign', ALICE, { key: 'users/alice/up.txt', method: 'PUT' })).status, 200);
      assert.equal(await storage.exists('users/bob/x.txt'), false);
    });

    it('lets ?redirect=1 hand out a signed link only to keys that may presign', async () => {
      const manual = (path: string, key?: string) => fetch(`${base}${path}`, { redirect: 'manual', headers: key ? { authorization: `Bearer ${key}` } : {} });
      const readOnly = await manual('/api/objects/users/bob/photo.jpg?redirect=1', READER);
      assert.equal(readOnly.status, 403, 'a read-only key gets no credential-free link');
      assert.equal(readOnly.headers.get('location'), null);
      assert.equal(((await readOnly.json()) as { error: { code: string } }).error.code, 'E_ACCESS_DENIED');
      assert.equal((await manual('/api/objects/users/bob/photo.jpg', READER)).status, 200, 'reading it directly still works');
      assert.equal((await manual('/api/objects/public/logo.png?redirect=1')).status, 401, 'nor does an anonymous reader of a public prefix');
      const allowed = await manual('/api/objects/users/alice/photo.jpg?redirect=1', ALICE);
      assert.equal(allowed.status, 302);
      // S3 links go to the service; fs links name a placeholder base URL, checked by path and query only.
      const link = new URL(allowed.headers.get('location') as string);
      assert.equal(await (await fetch(link.port === '1' ? `${base}${link.pathname}${link.search}` : link)).text(), 'alice photo');
      assert.equal((await manual('/api/objects/users/bob/photo.jpg?redirect=1', ALICE)).status, 403, "presign is no way into bob's prefix");
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
      assert.equal(await storage.exists('public/evil.png'), false);
    });
  });
}
