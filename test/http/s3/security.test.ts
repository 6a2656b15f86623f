/**
 * The hardening of the HTTP service on the S3 backend (real RGW), over real HTTP: object
 * responses streamed from S3 are inert, S3's own presigned GET links cannot be made to
 * serve an active type (the driver presigns natively, so the check sits in front of
 * every driver), a stalled upload to S3 is timed out storing nothing, and the default
 * upload template works there too.
 */
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { after, before, describe, it } from 'node:test';
import type { FastifyInstance } from 'fastify';
import { buildApp, isStorageError, type Storage } from '../../../src/index.js';
import { emptyStorage, freshS3Storage } from '../../drivers/s3/env.js';
import { png } from '../helpers.js';

let app: FastifyInstance;
let base: string;
let storage: Storage;

before(async () => {
  storage = await freshS3Storage('http-security');
  app = await buildApp({ storage, logger: false, bodyIdleTimeoutMs: 1000 });
  base = await app.listen({ host: '127.0.0.1', port: 0 });
});
after(async () => {
  await app?.close();
  if (storage) await emptyStorage(storage);
});

describe('http security on S3', () => {
  it('serves an uploaded HTML page from S3 as a sandboxed attachment, and a PNG inline', async () => {
    const put = await fetch(`${base}/api/objects/x/evil.jpg`, { method: 'PUT', body: Buffer.from('<script>alert(1)</script>'), headers: { 'content-type': 'text/html' } });
    assert.equal(put.status, 201);
    const res = await fetch(`${base}/api/objects/x/evil.jpg`);
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-disposition') ?? '', /^attachment; filename="evil\.jpg"/);
    assert.match(res.headers.get('content-security-policy') ?? '', /sandbox/);
    await storage.put('x/ok.png', png(100), { contentType: 'image/png' });
    const image = await fetch(`${base}/api/objects/x/ok.png`);
    assert.equal(image.headers.get('content-disposition'), null);
    assert.match(image.headers.get('content-security-policy') ?? '', /sandbox/);
  });

  it('refuses an active responseContentType for S3 presigned links, naming the option', async () => {
    const res = await fetch(`${base}/api/presign`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ key: 'x/ok.png', method: 'GET', responseContentType: 'text/html' }) });
    assert.equal(res.status, 400);
    const body = (await res.json()) as { error: { code: string; message: string } };
    assert.equal(body.error.code, 'E_INVALID_ARGUMENT');
    assert.match(body.error.message, /responseContentType/);
    await assert.rejects(storage.signedUrl('x/ok.png', { method: 'GET', responseContentType: 'image/svg+xml' }), (err) => isStorageError(err, 'E_INVALID_ARGUMENT') && /responseContentType/.test(err.message));
    // A passive override reaches S3, which serves the file as that type.
    const passive = await fetch(`${base}/api/presign`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ key: 'x/ok.png', method: 'GET', responseContentType: 'application/octet-stream' }) });
    const { url } = (await passive.json()) as { url: string };
    assert.equal((await fetch(url)).headers.get('content-type'), 'application/octet-stream');
  });

  it('times out a stalled upload to S3, storing nothing', async () => {
    const port = new URL(base).port;
    const socket = connect(Number(port), '127.0.0.1');
    let text = '';
    socket.on('data', (c: Buffer) => (text += c.toString()));
    socket.on('error', () => undefined);
    const closed = new Promise((resolve) => socket.once('close', resolve));
    socket.write(`PUT /api/objects/stalled.bin HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nContent-Length: 1000\r\n\r\n${'x'.repeat(10)}`);
    // A generous deadline (the timeout is 1 s), so that a service without one fails rather than hangs.
    const deadline = setTimeout(() => socket.destroy(), 15_000);
    await closed;
    clearTimeout(deadline);
    assert.match(text, /^HTTP\/1\.1 408 /, 'no 408 within 15 s');
    assert.equal(await storage.exists('stalled.bin'), false);
    assert.deepEqual(await storage.incompleteUploads(), []);
  });

  it('accepts uploads through the default template', async () => {
    const form = new FormData();
    form.append('file', new Blob([png(300)], { type: 'image/png' }), 'me.png');
    const res = await fetch(`${base}/api/uploads`, { method: 'POST', body: form });
    assert.equal(res.status, 201);
    const { files } = (await res.json()) as { files: { key: string; contentType: string }[] };
    assert.match(files[0]?.key ?? '', /^uploads\/\d{4}-\d{2}-\d{2}\/[0-9a-f-]{36}\.png$/);
    assert.equal((await storage.stat(files[0]?.key as string)).contentType, 'image/png');
  });
});
