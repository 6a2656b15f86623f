/**
 * The HTTP service on the S3 backend (real RGW), over real HTTP: health with the bucket,
 * raw and multipart uploads, Range/304/HEAD, redirects to presigned URLs, presigned
 * transfers straight to S3, the bad-input matrix, a client that disconnects mid-upload,
 * shutdown of the real process during uploads, the auth matrix, failed writes that leave
 * the previous version as it was, and huge Range positions.
 */
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { after, before, describe, it } from 'node:test';
import type { FastifyInstance } from 'fastify';
import { buildApp, createStorage, type Storage } from '../../src/index.js';
import { freshS3Storage, s3Options, s3TestEnv, uniqueBucket } from '../drivers/s3/env.js';
import { describeAllOrNothing } from './all-or-nothing.js';
import { describeAuthMatrix } from './auth-matrix.js';
import { describeHugeRanges } from './ranges.js';
import { KEY_ATTACKS, LISTENING, png, rawRequest, runServer, slowUpload } from './helpers.js';

let app: FastifyInstance;
let base: string;
let bucket: string;
let storage: Storage;

before(async () => {
  bucket = uniqueBucket('http');
  storage = createStorage({ driver: 's3', ...s3Options(bucket) });
  await storage.verify({ createBucket: true });
  const uploadPolicies = { photos: { template: 'photos/{uuid}.{ext}', maxSize: 100_000, allowedTypes: ['image/png'] } };
  app = await buildApp({ storage, logger: false, uploadPolicies });
  base = await app.listen({ host: '127.0.0.1', port: 0 });
});
after(async () => app?.close());

/** Waits until `check` holds, up to a few seconds (the service finishes an abort after the client is gone). */
async function eventually(check: () => Promise<boolean>, what: string): Promise<void> {
  for (let i = 0; i < 50; i++) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  assert.fail(what);
}

describe('http on S3', () => {
  it('reports the bucket in the storage health check', async () => {
    const res = await fetch(`${base}/api/storage/health`);
    assert.equal(res.status, 200);
    const body = (await res.json()) as { status: string; backend: string; bucket: string; latencyMs: number };
    assert.deepEqual({ ...body, latencyMs: undefined }, { status: 'connected', backend: 's3', bucket, latencyMs: undefined });
    assert.ok(body.latencyMs >= 0);
  });

  it('streams uploads to S3 and serves them whole, by range, 304 and HEAD back', async () => {
    const put = await fetch(`${base}/api/objects/media/clip.mp3`, { method: 'PUT', body: Buffer.alloc(70_000, 9), headers: { 'content-type': 'audio/mpeg' } });
    assert.equal(put.status, 201);
    const whole = await fetch(`${base}/api/objects/media/clip.mp3`);
    assert.deepEqual([whole.status, whole.headers.get('content-length')], [200, '70000']);
    assert.deepEqual(Buffer.from(await whole.arrayBuffer()), Buffer.alloc(70_000, 9), 'streamed from S3 whole');
    const range = await fetch(`${base}/api/objects/media/clip.mp3`, { headers: { range: 'bytes=-10' } });
    assert.equal(range.status, 206);
    assert.equal(range.headers.get('content-range'), 'bytes 69990-69999/70000');
    assert.equal((await fetch(`${base}/api/objects/media/clip.mp3`, { headers: { range: 'bytes=80000-' } })).status, 416);
    const head = await fetch(`${base}/api/objects/media/clip.mp3`, { method: 'HEAD' });
    assert.deepEqual([head.status, head.headers.get('content-length'), head.headers.get('content-type')], [200, '70000', 'audio/mpeg']);
    const etag = head.headers.get('etag') as string;
    assert.equal((await fetch(`${base}/api/objects/media/clip.mp3`, { headers: { 'if-none-match': etag } })).status, 304);
  });

  it('stores multipart form uploads in S3 under the template, checked by magic bytes', async () => {
    const form = new FormData();
    form.append('file', new Blob([png(5000)], { type: 'application/octet-stream' }), 'me.png');
    const res = await fetch(`${base}/api/uploads?template=photos`, { method: 'POST', body: form });
    assert.equal(res.status, 201);
    const [file] = ((await res.json()) as { files: { key: string; contentType: string; sha256: string }[] }).files;
    assert.match(file?.key ?? '', /^photos\/[0-9a-f-]{36}\.png$/);
    const stored = await storage.stat(file?.key as string);
    assert.deepEqual([stored.contentType, stored.sha256], ['image/png', file?.sha256]);
    const html = new FormData();
    html.append('file', new Blob(['<!DOCTYPE html><script>x</script>'], { type: 'image/png' }), 'evil.png');
    assert.equal((await fetch(`${base}/api/uploads?template=photos`, { method: 'POST', body: html })).status, 415);
    assert.equal((await storage.usage({ prefix: 'photos/' })).objects, 1);
  });

  it('redirects ?redirect=1 to a presigned S3 URL that serves the object', async () => {
    await storage.put('media/redirect.txt', 'via S3');
    const res = await fetch(`${base}/api/objects/media/redirect.txt?redirect=1`, { redirect: 'manual' });
    assert.equal(res.status, 302);
    const location = res.headers.get('location') as string;
    assert.ok(location.startsWith(s3TestEnv().endpoint), location);
    assert.equal(await (await fetch(location)).text(), 'via S3');
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

  it('refuses every key attack with 400 and writes nothing to the bucket', async () => {
    const before = await storage.usage();
    for (const [path, code] of KEY_ATTACKS) {
      for (const method of ['GET', 'PUT', 'DELETE']) {
        const res = await rawRequest(base, method, `/api/objects/${path}`, method === 'PUT' ? 'x' : undefined);
        assert.equal(res.status, 400, `${method} ${path}`);
        assert.equal(res.json.error?.code, code, `${method} ${path}`);
      }
    }
    assert.deepEqual(await storage.usage(), before);
  });

  it('leaves no object and no multipart upload when a client disconnects mid-upload', async () => {
    // Past the 16 MiB multipart threshold, so the service has started a multipart upload when the client goes.
    const req = request(`${base}/api/objects/aborted/big.bin`, { method: 'PUT', headers: { 'content-length': String(64 * 1024 * 1024) } });
    req.on('error', () => undefined);
    for (let i = 0; i < 20; i++) req.write(Buffer.alloc(1024 * 1024, i));
    await eventually(async () => (await storage.incompleteUploads({ prefix: 'aborted/' })).length === 1, 'the service started a multipart upload');
    req.destroy();
    await eventually(async () => (await storage.incompleteUploads({ prefix: 'aborted/' })).length === 0, 'the multipart upload is aborted');
    assert.equal(await storage.exists('aborted/big.bin'), false);
  });
});

describe('http on S3: the real process on SIGTERM', () => {
  const env = () => {
    const t = s3TestEnv();
    return { PORT: '0', STORAGE_BACKEND: 's3', STORAGE_S3_BUCKET: bucket, STORAGE_S3_ENDPOINT_URL: t.endpoint, STORAGE_S3_ACCESS_KEY: t.accessKeyId, STORAGE_S3_SECRET_KEY: t.secretAccessKey, STORAGE_S3_PROVIDER: 'ceph', STORAGE_S3_REGION: t.region };
  };
  // 24 MiB in 1 MiB pieces every 50 ms: a multipart upload that takes about 1.2 s.
  const total = 24 * 1024 * 1024;
  for (const [label, deadlineMs, expectStored] of [['finishes a multipart upload in flight within the deadline', 20_000, true], ['aborts a multipart upload still running at the deadline, storing nothing', 300, false]] as const) {
    it(label, async () => {
      const key = `shutdown/${expectStored ? 'kept' : 'cut'}.bin`;
      const { output, child } = await runServer({ ...env(), STOWAGE_SHUTDOWN_TIMEOUT_MS: String(deadlineMs) }, LISTENING);
      const address = LISTENING.exec(output)?.[1];
      assert.ok(address, output);
      const upload = slowUpload(address, key, total, 50, 1024 * 1024);
      await new Promise((r) => setTimeout(r, 300));
      const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
      child.kill('SIGTERM');
      const status = await upload;
      assert.equal(await exited, 0);
      if (expectStored) {
        assert.equal(status, 201);
        assert.equal((await storage.stat(key)).size, total);
      } else {
        assert.notEqual(status, 201);
        assert.equal(await storage.exists(key), false, 'no partial object');
        assert.deepEqual(await storage.incompleteUploads({ prefix: 'shutdown/' }), [], 'the multipart upload was aborted before exit');
      }
    });
  }
});

describeAuthMatrix('s3', () => freshS3Storage('auth'));
// A low multipart threshold, so a raw PUT cut off after 6 MiB has begun a multipart upload.
describeAllOrNothing('s3', () => freshS3Storage('all-or-nothing', { multipartThreshold: 5 * 1024 * 1024, partSize: 5 * 1024 * 1024 }), { multipartBytes: 6 * 1024 * 1024 });
describeHugeRanges('s3', () => freshS3Storage('ranges'));
