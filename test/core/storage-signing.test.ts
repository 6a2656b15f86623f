/**
 * `storage.verifySignedUrl`: a storage verifies the HMAC links it issues, with the one
 * secret it was given; what a secret alone and a secret with a base URL allow.
 */
import assert from 'node:assert/strict';
import { afterEach, describe, it, mock } from 'node:test';
import { createStorage, StorageError } from '../../src/index.js';

const SECRET = 'storage-signing-secret-0123456789';
const BASE = 'https://files.example.com/storage';

function denied(fn: () => unknown, reason: RegExp): void {
  assert.throws(fn, (e: unknown) => e instanceof StorageError && e.code === 'E_ACCESS_DENIED' && reason.test(e.message));
}

function configError(fn: () => unknown, reason: RegExp): void {
  assert.throws(fn, (e: unknown) => e instanceof StorageError && e.code === 'E_CONFIG_INVALID' && reason.test(e.message));
}

describe('storage.verifySignedUrl', () => {
  const storage = createStorage({ driver: 'memory', baseUrl: BASE, signingSecret: SECRET });

  afterEach(() => mock.timers.reset());

  it('returns the terms of a link the storage signed, from the URL or the request path', async () => {
    const put = await storage.signedUrl('users/42/фото 1+1.jpg', { method: 'PUT', expiresIn: 600, contentType: 'image/jpeg', maxSize: 5000 });
    const grant = storage.verifySignedUrl(put.url, 'PUT');
    assert.deepEqual(
      { ...grant, expiresAt: grant.expiresAt.getTime() },
      { key: 'users/42/фото 1+1.jpg', method: 'PUT', contentType: 'image/jpeg', maxSize: 5000, contentLength: undefined, download: undefined, responseContentType: undefined, expiresAt: put.expiresAt.getTime() },
    );
    assert.equal(storage.verifySignedUrl(new URL(put.url), 'PUT').key, 'users/42/фото 1+1.jpg');
    assert.equal(storage.verifySignedUrl(put.url.slice(BASE.length), 'PUT').key, 'users/42/фото 1+1.jpg');
  });

  it('verifies a form action for POST, and a GET link for GET and HEAD', async () => {
    const post = await storage.presignPost('forms/a.png', { contentType: 'image/png', maxSize: 100 });
    assert.deepEqual([storage.verifySignedUrl(post.url, 'POST').contentType, storage.verifySignedUrl(post.url, 'POST').maxSize], ['image/png', 100]);
    const get = await storage.signedUrl('a.txt', { method: 'GET', download: 'report.txt' });
    assert.equal(storage.verifySignedUrl(get.url, 'GET').download, 'report.txt');
    assert.equal(storage.verifySignedUrl(get.url, 'HEAD').key, 'a.txt');
  });

  it('refuses an expired link', async () => {
    mock.timers.enable({ apis: ['Date'], now: 1_800_000_000_000 });
    const get = await storage.signedUrl('a.txt', { method: 'GET', expiresIn: 60 });
    mock.timers.tick(59_000);
    assert.equal(storage.verifySignedUrl(get.url, 'GET').key, 'a.txt');
    mock.timers.tick(1_000);
    denied(() => storage.verifySignedUrl(get.url, 'GET'), /it has expired/);
  });

  it('refuses a tampered link: another key, a changed term, a changed signature', async () => {
    const put = await storage.signedUrl('a.txt', { method: 'PUT', contentType: 'text/plain', maxSize: 10 });
    denied(() => storage.verifySignedUrl(put.url.replace('/files/a.txt?', '/files/b.txt?'), 'PUT'), /signature does not match/);
    const bigger = new URL(put.url);
    bigger.searchParams.set('X-Stowage-Max-Size', '1000000');
    denied(() => storage.verifySignedUrl(bigger, 'PUT'), /signature does not match/);
    const retyped = new URL(put.url);
    retyped.searchParams.set('X-Stowage-Content-Type', 'text/html');
    denied(() => storage.verifySignedUrl(retyped, 'PUT'), /signature does not match/);
    const resigned = new URL(put.url);
    resigned.searchParams.set('X-Stowage-Signature', Buffer.alloc(32).toString('base64url'));
    denied(() => storage.verifySignedUrl(resigned, 'PUT'), /signature does not match/);
    const longer = new URL(put.url);
    longer.searchParams.set('X-Stowage-Expires', String(Number(longer.searchParams.get('X-Stowage-Expires')) + 3600));
    denied(() => storage.verifySignedUrl(longer, 'PUT'), /signature does not match/);
  });

  it('refuses a link used with another method than it was signed for', async () => {
    const put = await storage.signedUrl('a.txt', { method: 'PUT' });
    denied(() => storage.verifySignedUrl(put.url, 'GET'), /signed for PUT, not GET/);
    denied(() => storage.verifySignedUrl(put.url, 'HEAD'), /signed for PUT, not GET/);
    denied(() => storage.verifySignedUrl(put.url, 'POST'), /signed for PUT, not POST/);
    const get = await storage.signedUrl('a.txt', { method: 'GET' });
    denied(() => storage.verifySignedUrl(get.url, 'PUT'), /signed for GET, not PUT/);
  });

  it("refuses a link signed with another storage's key", async () => {
    const other = createStorage({ driver: 'memory', baseUrl: BASE, signingSecret: 'another-secret-0123456789' });
    const get = await other.signedUrl('a.txt', { method: 'GET' });
    denied(() => storage.verifySignedUrl(get.url, 'GET'), /signature does not match/);
    const ours = await storage.signedUrl('a.txt', { method: 'GET' });
    denied(() => other.verifySignedUrl(ours.url, 'GET'), /signature does not match/);
  });

  it('needs the method: without it a PUT link could be used to read', async () => {
    const put = await storage.signedUrl('a.txt', { method: 'PUT' });
    const untyped = storage as unknown as { verifySignedUrl(url: string, method?: unknown): unknown };
    assert.throws(() => untyped.verifySignedUrl(put.url), (e: unknown) => e instanceof StorageError && e.code === 'E_INVALID_ARGUMENT' && /needs the request's method/.test(e.message));
  });

  it('verifies with a secret alone, which cannot sign (no base URL)', async () => {
    const verifier = createStorage({ driver: 'memory', signingSecret: SECRET });
    const get = await storage.signedUrl('a.txt', { method: 'GET' });
    assert.equal(verifier.verifySignedUrl(get.url, 'GET').key, 'a.txt');
    assert.equal(verifier.capabilities.signedUrls, false);
    await assert.rejects(verifier.signedUrl('a.txt', { method: 'GET' }), (e: unknown) => e instanceof StorageError && e.code === 'E_CONFIG_INVALID' && /missing: baseUrl \(STORAGE_PUBLIC_URL\)$/.test(e.message));
  });

  it('without a secret, says which setting to configure (E_CONFIG_INVALID)', async () => {
    const get = await storage.signedUrl('a.txt', { method: 'GET' });
    for (const bare of [createStorage({ driver: 'memory' }), createStorage({ driver: 'memory', baseUrl: BASE })]) {
      configError(() => bare.verifySignedUrl(get.url, 'GET'), /signed links on the memory backend are verified with the signingSecret option; missing: signingSecret \(STORAGE_SIGNING_SECRET\)$/);
    }
  });

  it('refuses a secret too short to be safe even without a base URL', () => {
    configError(() => createStorage({ driver: 'memory', signingSecret: 'short' }), /signingSecret must be at least 16 characters/);
  });

  it('a copy over a wrapped driver verifies the same links', async () => {
    const get = await storage.signedUrl('a.txt', { method: 'GET' });
    assert.equal(storage.withDriver((driver) => driver).verifySignedUrl(get.url, 'GET').key, 'a.txt');
  });
});
