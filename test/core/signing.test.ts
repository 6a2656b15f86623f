/** Unit tests for HMAC-signed URLs: what is covered by the signature, expiry, tampering. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createSignedUrl, normalizeBaseUrl } from '../../src/core/signing.js';
import { StorageError, verifySignedUrl } from '../../src/index.js';

const secret = 'unit-test-secret-000000000000';
const signer = { baseUrl: 'https://files.example.com/storage', secret };
const now = 1_800_000_000_000;

function denied(fn: () => unknown, reason: RegExp): void {
  assert.throws(fn, (e: unknown) => e instanceof StorageError && e.code === 'E_ACCESS_DENIED' && reason.test(e.message));
}

describe('signed URLs', () => {
  const put = createSignedUrl('users/42/фото 1+1.jpg', { method: 'PUT', expiresIn: 600, contentType: 'image/jpeg', maxSize: 5_000_000 }, signer, now);

  it('builds a URL on the base URL with the key percent-encoded', () => {
    assert.ok(put.url.startsWith('https://files.example.com/storage/files/users/42/%D1%84%D0%BE%D1%82%D0%BE%201%2B1.jpg?'));
    assert.equal(put.expiresAt.getTime(), now + 600_000);
    assert.deepEqual(put.headers, { 'content-type': 'image/jpeg' });
  });

  it('verifies and returns every signed field', () => {
    const v = verifySignedUrl(put.url, { signingSecret: secret, method: 'PUT', now: now + 1000 });
    assert.deepEqual(v, { key: 'users/42/фото 1+1.jpg', method: 'PUT', contentType: 'image/jpeg', maxSize: 5_000_000, contentLength: undefined, download: undefined, responseContentType: undefined, expiresAt: new Date(now + 600_000) });
  });

  it('verifies a bare request path, as the HTTP service sees it', () => {
    const path = put.url.slice('https://files.example.com/storage'.length);
    assert.equal(verifySignedUrl(path, { signingSecret: secret, now }).key, 'users/42/фото 1+1.jpg');
  });

  it('signs GET overrides for the file name and content type', () => {
    const get = createSignedUrl('a.bin', { method: 'GET', expiresIn: 60, download: 'a.txt', responseContentType: 'text/plain' }, signer, now);
    const v = verifySignedUrl(get.url, { signingSecret: secret, method: 'GET', now });
    assert.equal(v.download, 'a.txt');
    assert.equal(v.responseContentType, 'text/plain');
  });

  it('rejects an expired URL', () => {
    denied(() => verifySignedUrl(put.url, { signingSecret: secret, now: now + 600_001 }), /expired/);
  });

  it('rejects the wrong method', () => {
    denied(() => verifySignedUrl(put.url, { signingSecret: secret, method: 'GET', now }), /signed for PUT, not GET/);
  });

  it('rejects the wrong secret', () => {
    denied(() => verifySignedUrl(put.url, { signingSecret: `${secret}x`, now }), /signature/);
  });

  const tampering: [string, (u: URL) => void][] = [
    ['the key', (u) => (u.pathname = u.pathname.replace('42', '43'))],
    ['the expiry', (u) => u.searchParams.set('X-Stowage-Expires', String(now / 1000 + 99999))],
    ['the content type', (u) => u.searchParams.set('X-Stowage-Content-Type', 'text/html')],
    ['the size limit', (u) => u.searchParams.set('X-Stowage-Max-Size', '999999999')],
    ['a removed size limit', (u) => u.searchParams.delete('X-Stowage-Max-Size')],
    ['an added download name', (u) => u.searchParams.set('X-Stowage-Download', 'x.html')],
    ['an added response content type', (u) => u.searchParams.set('X-Stowage-Response-Content-Type', 'text/html')],
    ['the method', (u) => u.searchParams.set('X-Stowage-Method', 'GET')],
    ['the signature', (u) => u.searchParams.set('X-Stowage-Signature', 'AAAA')],
  ];
  for (const [what, change] of tampering) {
    it(`rejects a URL with tampered ${what}`, () => {
      const u = new URL(put.url);
      change(u);
      denied(() => verifySignedUrl(u.href, { signingSecret: secret, now }), /signature|malformed|missing/);
    });
  }

  it('rejects malformed URLs with a reason', () => {
    denied(() => verifySignedUrl('https://x/other/path', { signingSecret: secret, now }), /no "\/files\/" segment/);
    denied(() => verifySignedUrl('https://x/files/a?X-Stowage-Method=GET', { signingSecret: secret, now }), /missing or malformed/);
    denied(() => verifySignedUrl('https://x/files/%E0%A4%A?X-Stowage-Method=GET', { signingSecret: secret, now }), /percent-encoding/);
  });

  it('checks base URLs', () => {
    assert.equal(normalizeBaseUrl('http://localhost:8080/'), 'http://localhost:8080');
    assert.throws(() => normalizeBaseUrl('ftp://x'), /http/);
    assert.throws(() => normalizeBaseUrl('http://x/?a=1'), /query/);
    assert.throws(() => normalizeBaseUrl('http://x/files/'), /files/);
    assert.throws(() => normalizeBaseUrl('not a url'), /not a valid URL/);
  });
});
