/**
 * The storage owns the signing secret: the service verifies signed links through it,
 * so a secret given to the storage alone is enough; the routes' own (deprecated)
 * `signingSecret` may repeat it but not contradict it; and a service whose storage
 * cannot sign still has its routes, answering with the setting to configure.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import Fastify from 'fastify';
import { buildApp, createStorage, stowageRoutes, StorageError, type Storage } from '../../src/index.js';
import { LISTENING, runServerWithin, servicesClosedAfterAll, TEST_SECRET } from './helpers.js';

const start = servicesClosedAfterAll();
const OTHER_SECRET = 'another-signing-secret-0123456789';

type ErrorJson = { error: { code: string; message: string } };

/** Presigns over HTTP; the answer's JSON, with the status checked. */
async function presign(base: string, body: Record<string, unknown>): Promise<{ url: string; headers?: Record<string, string>; fields?: Record<string, string> }> {
  const res = await fetch(`${base}/api/presign`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  assert.equal(res.status, 200, await res.clone().text());
  return (await res.json()) as { url: string; headers?: Record<string, string>; fields?: Record<string, string> };
}

/** The error of a failed answer, with its status. */
async function failure(res: Response): Promise<{ status: number; code: string; message: string }> {
  const { error } = (await res.json()) as ErrorJson;
  return { status: res.status, code: error.code, message: error.message };
}

function configError(pattern: RegExp): (e: unknown) => boolean {
  return (e: unknown) => e instanceof StorageError && e.code === 'E_CONFIG_INVALID' && pattern.test(e.message);
}

describe('http: the storage owns the signing secret', () => {
  it('serves the GET, HEAD, PUT and form POST links of a storage whose secret buildApp was not given', async () => {
    // The storage has baseUrl and secret; buildApp gets no signingSecret at all.
    const { base, storage } = await start({ signingSecret: undefined });

    const put = await presign(base, { key: 'owner/put.txt', method: 'PUT', contentType: 'text/plain' });
    assert.ok(put.url.startsWith(`${base}/files/owner/put.txt?`), put.url);
    const stored = await fetch(put.url, { method: 'PUT', headers: put.headers, body: 'put through a signed link' });
    assert.equal(stored.status, 201, await stored.clone().text());
    assert.equal((await storage.get('owner/put.txt')).toString(), 'put through a signed link');

    const get = await presign(base, { key: 'owner/put.txt', method: 'GET' });
    const read = await fetch(get.url);
    assert.equal(read.status, 200);
    assert.equal(await read.text(), 'put through a signed link');
    assert.equal((await fetch(get.url, { method: 'HEAD' })).status, 200);

    const post = await presign(base, { key: 'owner/form.txt', method: 'POST', contentType: 'text/plain', maxSize: 1000 });
    const form = new FormData();
    for (const [name, value] of Object.entries(post.fields ?? {})) form.append(name, value);
    form.append('file', new Blob(['posted through a signed form'], { type: 'text/plain' }), 'form.txt');
    const posted = await fetch(post.url, { method: 'POST', body: form });
    assert.equal(posted.status, 201, await posted.clone().text());
    assert.equal((await storage.get('owner/form.txt')).toString(), 'posted through a signed form');

    // The link is still checked: another method, or a tampered key, is refused.
    assert.equal((await failure(await fetch(get.url, { method: 'PUT', body: 'x' }))).status, 403);
    assert.equal((await fetch(get.url.replace('/owner/put.txt?', '/owner/other.txt?'))).status, 403);
  });

  it('still accepts the deprecated routes secret when it equals the storage secret', async () => {
    const { base } = await start({ signingSecret: TEST_SECRET });
    const put = await presign(base, { key: 'owner/same.txt', method: 'PUT' });
    assert.equal((await fetch(put.url, { method: 'PUT', body: 'same' })).status, 201);
    assert.equal(await (await fetch((await presign(base, { key: 'owner/same.txt', method: 'GET' })).url)).text(), 'same');
  });

  it('refuses at buildApp, and at plugin registration, a routes secret other than the storage secret (E_CONFIG_INVALID)', async () => {
    const storage = createStorage({ driver: 'memory', baseUrl: 'http://127.0.0.1:1', signingSecret: TEST_SECRET });
    const mismatch = configError(/signingSecret option differs from the storage's signingSecret/);
    await assert.rejects(buildApp({ storage, signingSecret: OTHER_SECRET, logger: false }), (e: unknown) => {
      // The message names the mismatch, never a secret.
      assert.ok(e instanceof Error && !e.message.includes(TEST_SECRET) && !e.message.includes(OTHER_SECRET), String(e));
      return mismatch(e);
    });
    const userApp = Fastify();
    try {
      await assert.rejects(async () => userApp.register(stowageRoutes, { storage, signingSecret: OTHER_SECRET }).ready(), mismatch);
    } finally {
      await userApp.close().catch(() => {});
    }
  });

  it('refuses a deprecated routes secret that is too short to be safe', async () => {
    const storage = createStorage({ driver: 'memory' });
    await assert.rejects(buildApp({ storage, signingSecret: 'short', logger: false }), configError(/the HTTP routes' signingSecret option must be at least 16 characters/));
  });

  it('without a secret anywhere, registers the routes: presign and /files/ answer E_CONFIG_INVALID naming STORAGE_SIGNING_SECRET', async () => {
    // The base URL is set: the one missing setting is the secret.
    const storage = createStorage({ driver: 'memory', baseUrl: 'http://127.0.0.1:1' });
    await storage.put('owner/a.txt', 'a');
    const app = await buildApp({ storage, logger: false });
    try {
      const base = await app.listen({ host: '127.0.0.1', port: 0 });
      const notConfigured = { status: 500, code: 'E_CONFIG_INVALID', message: 'Signed links are not configured on this server: set signingSecret (STORAGE_SIGNING_SECRET).' };
      for (const method of ['GET', 'PUT', 'POST']) {
        const res = await fetch(`${base}/api/presign`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ key: 'owner/a.txt', method }) });
        assert.deepEqual(await failure(res), notConfigured, `presign ${method}`);
      }
      // A link from elsewhere (or from before the secret was removed) gets what to configure, not a 404 of a missing route.
      const link = `${base}/files/owner/a.txt?X-Stowage-Method=GET&X-Stowage-Expires=9999999999&X-Stowage-Signature=AAAA`;
      assert.deepEqual(await failure(await fetch(link)), notConfigured, 'GET /files/');
      assert.deepEqual(await failure(await fetch(link, { method: 'PUT', body: 'x' })), notConfigured, 'PUT /files/');
      const form = new FormData();
      form.append('file', new Blob(['x']), 'x.txt');
      assert.deepEqual(await failure(await fetch(link, { method: 'POST', body: form })), notConfigured, 'POST /files/');
      assert.equal((await fetch(link, { method: 'HEAD' })).status, 500, 'HEAD /files/');
      assert.equal((await storage.get('owner/a.txt')).toString(), 'a');
    } finally {
      await app.close();
    }
  });

  it('names the base URL too when the storage has neither setting', async () => {
    const app = await buildApp({ storage: createStorage({ driver: 'memory' }), logger: false });
    try {
      const base = await app.listen({ host: '127.0.0.1', port: 0 });
      const res = await fetch(`${base}/api/presign`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ key: 'k', method: 'PUT' }) });
      assert.deepEqual(await failure(res), { status: 500, code: 'E_CONFIG_INVALID', message: 'Signed links are not configured on this server: set baseUrl (STORAGE_PUBLIC_URL) and signingSecret (STORAGE_SIGNING_SECRET).' });
    } finally {
      await app.close();
    }
  });

  it('on a storage without a secret, the deprecated routes secret still verifies links signed elsewhere, as before', async () => {
    const storage = createStorage({ driver: 'memory' });
    // Another storage over the same objects signs the links, with the routes' secret.
    const signer: Storage = createStorage({ driver: storage.driver, baseUrl: 'http://127.0.0.1:1', signingSecret: OTHER_SECRET });
    await storage.put('owner/elsewhere.txt', 'signed elsewhere');
    const app = await buildApp({ storage, signingSecret: OTHER_SECRET, logger: false });
    try {
      const base = await app.listen({ host: '127.0.0.1', port: 0 });
      const link = new URL((await signer.signedUrl('owner/elsewhere.txt', { method: 'GET' })).url);
      const read = await fetch(`${base}${link.pathname}${link.search}`);
      assert.equal(read.status, 200);
      assert.equal(await read.text(), 'signed elsewhere');
      const forged = new URL((await createStorage({ driver: 'memory', baseUrl: 'http://127.0.0.1:1', signingSecret: TEST_SECRET }).signedUrl('owner/elsewhere.txt', { method: 'GET' })).url);
      assert.equal((await fetch(`${base}${forged.pathname}${forged.search}`)).status, 403);
    } finally {
      await app.close();
    }
  });
});

describe('server: STORAGE_SIGNING_SECRET goes to the storage', () => {
  for (const [label, secretEnv] of [
    ['a configured secret', { STORAGE_SIGNING_SECRET: TEST_SECRET }],
    ['the random secret of a server without one', {}],
  ] as const) {
    it(`presigned PUT and GET links work end to end (${label})`, async () => {
      const { child, output } = await runServerWithin({ STORAGE_BACKEND: 'memory', PORT: '0', ...secretEnv }, LISTENING);
      try {
        const base = LISTENING.exec(output)?.[1];
        assert.ok(base, output);
        // PORT=0: the links name port 8080, so they are sent to the real port (they are checked by path and query).
        const onServer = (url: string) => `${base}${new URL(url).pathname}${new URL(url).search}`;
        const put = await presign(base, { key: 'server/a.txt', method: 'PUT' });
        assert.equal((await fetch(onServer(put.url), { method: 'PUT', body: 'through the server' })).status, 201);
        const get = await presign(base, { key: 'server/a.txt', method: 'GET' });
        assert.equal(await (await fetch(onServer(get.url))).text(), 'through the server');
      } finally {
        child.kill('SIGTERM');
      }
    });
  }
});
