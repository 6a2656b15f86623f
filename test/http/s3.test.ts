/** The HTTP service on the S3 backend (real RGW): health with the bucket, uploads, presigned transfers straight to S3, and the auth matrix. */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { FastifyInstance } from 'fastify';
import { buildApp, createStorage } from '../../src/index.js';
import { freshS3Storage, s3Options, uniqueBucket } from '../drivers/s3/env.js';
import { describeAuthMatrix } from './auth-matrix.js';

let app: FastifyInstance;
let base: string;
let bucket: string;

before(async () => {
  bucket = uniqueBucket('http');
  const storage = createStorage({ driver: 's3', ...s3Options(bucket) });
  await storage.verify({ createBucket: true });
  app = await buildApp({ storage, logger: false });
  base = await app.listen({ host: '127.0.0.1', port: 0 });
});
after(async () => app?.close());

describe('http on S3', () => {
  it('reports the bucket in the storage health check', async () => {
    const res = await fetch(`${base}/api/storage/health`);
    assert.equal(res.status, 200);
    const body = (await res.json()) as { status: string; backend: string; bucket: string; latencyMs: number };
    assert.deepEqual({ ...body, latencyMs: undefined }, { status: 'connected', backend: 's3', bucket, latencyMs: undefined });
    assert.ok(body.latencyMs >= 0);
  });

  it('streams uploads to S3 and serves ranges back', async () => {
    const put = await fetch(`${base}/api/objects/media/clip.mp3`, { method: 'PUT', body: Buffer.alloc(70_000, 9), headers: { 'content-type': 'audio/mpeg' } });
    assert.equal(put.status, 201);
    const range = await fetch(`${base}/api/objects/media/clip.mp3`, { headers: { range: 'bytes=-10' } });
    assert.equal(range.status, 206);
    assert.equal(range.headers.get('content-range'), 'bytes 69990-69999/70000');
  });

  it('presigns PUT, GET and a browser POST form that go straight to S3', async () => {
    const presign = async (body: Record<string, unknown>) =>
      (await (await fetch(`${base}/api/presign`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) })).json()) as { url: string; fields?: Record<string, string> };
    const put = await presign({ key: 'direct/a.txt', method: 'PUT', contentType: 'text/plain', contentLength: 5 });
    assert.ok(!put.url.startsWith(base), 'the upload bypasses the service');
    assert.equal((await fetch(put.url, { method: 'PUT', body: 'hello', headers: { 'content-type': 'text/plain' } })).status, 200);
    const get = await presign({ key: 'direct/a.txt', method: 'GET' });
    assert.equal(await (await fetch(get.url)).text(), 'hello');
    const post = await presign({ key: 'direct/form.png', method: 'POST', contentType: 'image/png', maxSize: 100 });
    const form = new FormData();
    for (const [k, v] of Object.entries(post.fields ?? {})) form.append(k, v);
    form.append('file', new Blob([Buffer.alloc(50)], { type: 'image/png' }), 'form.png');
    const res = await fetch(post.url, { method: 'POST', body: form });
    assert.ok(res.status >= 200 && res.status < 300, String(res.status));
    assert.equal((await fetch(`${base}/api/objects/direct/form.png`, { method: 'HEAD' })).headers.get('content-length'), '50');
  });
});

describeAuthMatrix('s3', () => freshS3Storage('auth'));
