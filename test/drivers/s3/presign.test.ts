/**
 * Presigned URLs against the real RGW, used by plain HTTP clients (curl and fetch), with
 * no SDK involved: GET with a download name, PUT bound to type and length, a browser-style
 * POST form with a size range, expiry, and signing for a public host.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { after, before, describe, it } from 'node:test';
import { createStorage, type Storage } from '../../../src/index.js';
import { rejectsWith } from '../../conformance/harness.js';
import { s3Options, s3TestEnv, uniqueBucket } from './env.js';
import { startFaultProxy, type FaultProxy } from './fault-proxy.js';

const run = promisify(execFile);
let storage: Storage;
let bucket: string;
const dir = mkdtempSync(join(tmpdir(), 'stowage-presign-'));

/** Runs curl (asynchronously: the test's own proxy must keep answering) and returns [HTTP status, body]. */
async function curl(args: string[]): Promise<[number, string]> {
  const { stdout } = await run('curl', ['-sS', '-o', join(dir, 'body'), '-w', '%{http_code}', ...args], { encoding: 'utf8' });
  return [Number(stdout), readFileSync(join(dir, 'body'), 'utf8')];
}

before(async () => {
  bucket = uniqueBucket('presign');
  storage = createStorage({ driver: 's3', ...s3Options(bucket) });
  await storage.verify({ createBucket: true });
});
after(() => rmSync(dir, { recursive: true, force: true }));

describe('s3 presigned URLs with plain HTTP clients', () => {
  it('downloads with curl from a presigned GET, with the requested file name and type', async () => {
    await storage.put('docs/rapport final.pdf', 'pdf bytes', { contentType: 'application/pdf' });
    const { url, expiresAt } = await storage.signedUrl('docs/rapport final.pdf', { method: 'GET', expiresIn: 300, download: 'Résumé "final".pdf', responseContentType: 'application/octet-stream' });
    assert.ok(expiresAt.getTime() > Date.now());
    const headers = join(dir, 'headers');
    const [status, body] = await curl(['-D', headers, url]);
    assert.equal(status, 200);
    assert.equal(body, 'pdf bytes');
    const disposition = readFileSync(headers, 'utf8').split('\n').find((l) => /^content-disposition:/i.test(l)) ?? '';
    assert.match(disposition, /attachment; filename="R_sum_ _final_.pdf"; filename\*=UTF-8''R%C3%A9sum%C3%A9%20%22final%22.pdf/);
    assert.match(readFileSync(headers, 'utf8'), /^content-type: application\/octet-stream\r?$/im, 'the content type override is served');
  });

  it('uploads with curl to a presigned PUT bound to content type and length', async () => {
    const body = join(dir, 'photo.jpg');
    writeFileSync(body, Buffer.alloc(1234, 0xd8));
    const { url, headers } = await storage.signedUrl('uploads/photo.jpg', { method: 'PUT', expiresIn: 300, contentType: 'image/jpeg', contentLength: 1234 });
    assert.deepEqual(headers, { 'content-type': 'image/jpeg', 'content-length': '1234' });
    const [wrongType] = await curl(['-X', 'PUT', '-H', 'content-type: text/html', '--data-binary', `@${body}`, url]);
    assert.equal(wrongType, 403, 'a different content type breaks the signature');
    const [status] = await curl(['-X', 'PUT', '-H', 'content-type: image/jpeg', '--data-binary', `@${body}`, url]);
    assert.equal(status, 200);
    const info = await storage.stat('uploads/photo.jpg');
    assert.equal(info.size, 1234);
    assert.equal(info.contentType, 'image/jpeg');
  });

  it('refuses a maximum size on a presigned PUT, which S3 cannot enforce', async () => {
    await rejectsWith(storage.signedUrl('x', { method: 'PUT', expiresIn: 60, maxSize: 10 }), 'E_UNSUPPORTED', 'presignPost');
  });

  it('accepts a browser-style POST form within the size range and refuses one above it', async () => {
    const post = await storage.presignPost('forms/avatar.png', { expiresIn: 300, contentType: 'image/png', maxSize: 1000 });
    const send = async (size: number) => {
      const form = new FormData();
      for (const [k, v] of Object.entries(post.fields)) form.append(k, v);
      form.append('file', new Blob([Buffer.alloc(size, 1)], { type: 'image/png' }), 'avatar.png');
      return fetch(post.url, { method: 'POST', body: form });
    };
    const tooBig = await send(1001);
    assert.equal(tooBig.status, 400);
    assert.match(await tooBig.text(), /EntityTooLarge/);
    assert.equal(await storage.exists('forms/avatar.png'), false);
    const ok = await send(1000);
    assert.ok(ok.status === 204 || ok.status === 200 || ok.status === 201, `status ${ok.status}`);
    const info = await storage.stat('forms/avatar.png');
    assert.equal(info.size, 1000);
    assert.equal(info.contentType, 'image/png');
  });

  it('refuses an expired URL', async () => {
    await storage.put('expiring.txt', 'x');
    const { url } = await storage.signedUrl('expiring.txt', { method: 'GET', expiresIn: 1 });
    await new Promise((r) => setTimeout(r, 2100));
    const [status, body] = await curl([url]);
    assert.equal(status, 403);
    assert.match(body, /AccessDenied|expired/i);
  });

  describe('with a public URL', () => {
    let proxy: FaultProxy;
    before(async () => {
      // The proxy plays the public host that clients see; the service itself talks to RGW directly.
      proxy = await startFaultProxy(s3TestEnv().endpoint);
    });
    after(async () => proxy.close());

    it('signs for the public host, and the link works there', async () => {
      const publicStorage = createStorage({ driver: 's3', ...s3Options(bucket, { publicUrl: proxy.url }) });
      await publicStorage.put('public/file.txt', 'through the public host');
      const { url } = await publicStorage.signedUrl('public/file.txt', { method: 'GET', expiresIn: 60 });
      assert.ok(url.startsWith(`${proxy.url}/${bucket}/public/file.txt?`), url);
      const [status, body] = await curl([url]);
      assert.equal(status, 200);
      assert.equal(body, 'through the public host');
      assert.equal(proxy.count('GET', '/public/file.txt'), 1);
    });
  });
});
