/**
 * S3 driver behaviour against the real RGW beyond the conformance suite: multipart
 * uploads with equal parts and a stored SHA-256, start-up checks with their messages,
 * a missing bucket told apart from a missing key, key prefixes, delete batching,
 * folder markers from other tools and multipart copies.
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { HeadObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { Readable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { createStorage, createStorageFromEnv, type S3DriverOptions, type Storage } from '../../../src/index.js';
import { rejectsWith } from '../../conformance/harness.js';
import { rawS3Client, s3Options, s3TestEnv, uniqueBucket } from './env.js';
import { startFaultProxy, type FaultProxy } from './fault-proxy.js';

const MiB = 1024 * 1024;
let proxy: FaultProxy;
let bucket: string;

function storage(extra: Partial<S3DriverOptions> = {}): Storage {
  return createStorage({ driver: 's3', ...s3Options(bucket, { endpoint: proxy.url, ...extra }) });
}

before(async () => {
  proxy = await startFaultProxy(s3TestEnv().endpoint);
  bucket = uniqueBucket('driver');
  assert.deepEqual((await storage().verify({ createBucket: true })).created, true);
});
after(async () => proxy?.close());

describe('s3 driver: multipart uploads', () => {
  const small = { multipartThreshold: 5 * MiB, partSize: 5 * MiB, concurrency: 2 };

  it('uploads a stream of unknown length in equal parts and stores its SHA-256', async () => {
    proxy.reset();
    const data = randomBytes(23 * MiB);
    const body = Readable.from(Array.from({ length: 23 }, (_, i) => data.subarray(i * MiB, (i + 1) * MiB)));
    const s = storage(small);
    const info = await s.put('mp/stream.bin', body, { contentType: 'video/mp4', metadata: { owner: 'ü' } });
    const parts = proxy.seen.filter((r) => r.method === 'PUT' && r.url.includes('partNumber='));
    assert.deepEqual([...parts.map((p) => p.contentLength)].sort((a, b) => (b ?? 0) - (a ?? 0)), [5 * MiB, 5 * MiB, 5 * MiB, 5 * MiB, 3 * MiB]);
    const stat = await s.stat('mp/stream.bin');
    assert.equal(stat.sha256, createHash('sha256').update(data).digest('hex'));
    assert.equal(info.sha256, stat.sha256);
    assert.equal(info.etag, stat.etag);
    assert.equal(stat.contentType, 'video/mp4');
    assert.deepEqual(stat.metadata, { owner: 'ü' });
    assert.deepEqual(await s.get('mp/stream.bin'), data);
  });

  it('stores a digest given up front at creation, without a copy afterwards', async () => {
    proxy.reset();
    const data = randomBytes(11 * MiB);
    const sha256 = createHash('sha256').update(data).digest('hex');
    await storage(small).put('mp/known.bin', Readable.from([data]), { sha256 });
    assert.equal(proxy.seen.filter((r) => r.copy).length, 0, 'no metadata copy was needed');
    assert.equal((await storage().stat('mp/known.bin')).sha256, sha256);
  });

  it('refuses a create-only multipart write over an existing key and leaves it', async () => {
    await storage().put('mp/taken.bin', 'original');
    await rejectsWith(storage(small).put('mp/taken.bin', Readable.from([randomBytes(6 * MiB)]), { ifNoneMatch: '*' }), 'E_ALREADY_EXISTS');
    assert.equal((await storage().get('mp/taken.bin')).toString(), 'original');
  });
});

describe('s3 driver: start-up checks and errors', () => {
  it('says when the bucket is missing, and creates it on request', async () => {
    const name = uniqueBucket('missing');
    const s = createStorage({ driver: 's3', ...s3Options(name) });
    await rejectsWith(s.verify(), 'E_BUCKET_NOT_FOUND', `bucket "${name}" does not exist`);
    const health = await s.health();
    assert.equal(health.ok, false);
    assert.equal(health.detail.code, 'E_BUCKET_NOT_FOUND');
    assert.equal((await s.verify({ createBucket: true })).created, true);
    assert.equal((await s.health()).ok, true);
  });

  it('says when the keys are wrong', async () => {
    const s = createStorage({ driver: 's3', ...s3Options(bucket, { secretAccessKey: 'wrong-secret-key-0000000000' }) });
    await rejectsWith(s.verify(), 'E_ACCESS_DENIED', 'check the access key and secret');
    await rejectsWith(s.get('anything'), 'E_ACCESS_DENIED');
  });

  it('says when the endpoint cannot be reached', async () => {
    const closed = await startFaultProxy('http://127.0.0.1:9');
    const url = closed.url;
    await closed.close();
    const s = createStorage({ driver: 's3', ...s3Options(bucket, { endpoint: url, retry: { maxAttempts: 2, baseDelayMs: 5 } }) });
    await rejectsWith(s.verify(), 'E_UNAVAILABLE', `cannot reach ${url}`);
  });

  it('tells a missing bucket from a missing key on every read', async () => {
    const s = createStorage({ driver: 's3', ...s3Options(uniqueBucket('gone')) });
    await rejectsWith(s.stat('k'), 'E_BUCKET_NOT_FOUND');
    await rejectsWith(s.get('k'), 'E_BUCKET_NOT_FOUND');
    await rejectsWith(s.list(), 'E_BUCKET_NOT_FOUND');
    await rejectsWith(storage().stat('no/such/key'), 'E_NOT_FOUND');
    await rejectsWith(storage().get('no/such/key'), 'E_NOT_FOUND');
  });

  it('puts every error detail a log needs on it', async () => {
    const err = await rejectsWith(storage().get('detail/missing'), 'E_NOT_FOUND');
    assert.equal(err.backend, 's3');
    assert.equal(err.key, 'detail/missing');
    const cause = err.cause as { details?: Record<string, unknown> } | undefined;
    assert.equal(cause?.details?.httpStatus, 404);
    assert.equal(cause?.details?.providerCode, 'NoSuchKey');
    assert.match(String(cause?.details?.requestId), /^tx/);
  });
});

describe('s3 driver: keys and listings', () => {
  it('keeps every key under the configured prefix', async () => {
    const tenant = storage({ prefix: 'tenant-a' });
    await tenant.put('photos/1.jpg', 'x');
    assert.deepEqual((await tenant.list()).objects.map((o) => o.key), ['photos/1.jpg']);
    assert.equal((await storage().stat('tenant-a/photos/1.jpg')).size, 1);
    assert.deepEqual((await tenant.list({ delimiter: '/' })).prefixes, ['photos/']);
  });

  it('deletes more than 1000 keys in batches of 1000', async () => {
    const s = storage({ prefix: 'batch' });
    const keys = Array.from({ length: 1500 }, (_, i) => `k/${i}`);
    for (let i = 0; i < keys.length; i += 50) await Promise.all(keys.slice(i, i + 50).map((k) => s.put(k, '')));
    proxy.reset();
    assert.equal(await s.deleteMany({ prefix: 'k/' }), 1500);
    // Two for the objects, and five for the names their image variants may have (three a key,
    // for the default thumb's AVIF, WebP and other renditions: 4,500 names).
    assert.equal(proxy.seen.filter((r) => r.method === 'POST' && r.url.includes('delete')).length, 2 + 5);
    assert.equal((await s.usage()).objects, 0);
  });

  it('skips folder markers and other keys Stowage cannot address', async () => {
    const client = rawS3Client();
    await client.send(new PutObjectCommand({ Bucket: bucket, Key: 'markers/photos/', Body: '' }));
    await client.send(new PutObjectCommand({ Bucket: bucket, Key: 'markers/a//b', Body: '' }));
    await client.send(new PutObjectCommand({ Bucket: bucket, Key: 'markers/photos/real.jpg', Body: 'x' }));
    client.destroy();
    assert.deepEqual((await storage().list({ prefix: 'markers/' })).objects.map((o) => o.key), ['markers/photos/real.jpg']);
  });

  it('copies above the multipart copy threshold with UploadPartCopy, keeping metadata and checksum', async () => {
    const s = storage({ multipartCopyThreshold: 5 * MiB });
    const data = randomBytes(7 * MiB);
    const src = await s.put('copy/src.bin', data, { contentType: 'image/avif', metadata: { who: 'Zoë' } });
    proxy.reset();
    const copy = await s.copy('copy/src.bin', 'copy/dst.bin');
    assert.ok(proxy.seen.some((r) => r.copy && r.url.includes('partNumber=')), 'a part copy was used');
    const stat = await s.stat('copy/dst.bin');
    assert.equal(stat.sha256, src.sha256);
    assert.equal(stat.contentType, 'image/avif');
    assert.deepEqual(stat.metadata, { who: 'Zoë' });
    assert.equal(copy.etag, stat.etag);
    assert.deepEqual(await s.get('copy/dst.bin'), data);
  });

  it('stores non-ASCII metadata RFC 2047-encoded, as S3 documents', async () => {
    await storage().put('meta/unicode.txt', 'x', { metadata: { title: 'Привет 👋', plain: 'ascii ok' } });
    const client = rawS3Client();
    const head = await client.send(new HeadObjectCommand({ Bucket: bucket, Key: 'meta/unicode.txt' }));
    client.destroy();
    assert.equal(head.Metadata?.title, `=?UTF-8?B?${Buffer.from('Привет 👋').toString('base64')}?=`);
    assert.equal(head.Metadata?.plain, 'ascii ok');
    assert.match(head.Metadata?.['stowage-sha256'] ?? '', /^[0-9a-f]{64}$/);
  });
});

describe('s3 driver: configuration from the environment', () => {
  it('works from STORAGE_URL alone', async () => {
    const env = s3TestEnv();
    const endpoint = new URL(env.endpoint);
    const s = createStorageFromEnv({
      STORAGE_URL: `s3+http://${encodeURIComponent(env.accessKeyId)}:${encodeURIComponent(env.secretAccessKey)}@${endpoint.host}/${bucket}/from-url?provider=ceph`,
    });
    await s.put('x.txt', 'via url');
    assert.equal((await storage().get('from-url/x.txt')).toString(), 'via url');
  });

  it('names the variable when the S3 configuration is wrong', () => {
    assert.throws(() => createStorageFromEnv({ STORAGE_BACKEND: 's3' }), /STORAGE_S3_BUCKET is required/);
    assert.throws(() => createStorageFromEnv({ STORAGE_BACKEND: 's3', STORAGE_S3_BUCKET: 'Bad_Bucket' }), /STORAGE_S3_BUCKET/);
    assert.throws(() => createStorageFromEnv({ STORAGE_BACKEND: 's3', STORAGE_S3_BUCKET: 'ok-bucket', STORAGE_S3_PROVIDER: 'dropbox' }), /STORAGE_S3_PROVIDER/);
    assert.throws(() => createStorageFromEnv({ STORAGE_BACKEND: 's3', STORAGE_S3_BUCKET: 'ok-bucket', STORAGE_S3_PROVIDER: 'minio' }), /endpoint is required.*STORAGE_S3_ENDPOINT_URL/);
    assert.throws(() => createStorageFromEnv({ STORAGE_BACKEND: 's3', STORAGE_S3_BUCKET: 'ok-bucket', STORAGE_S3_ACCESS_KEY: 'only-one' }), /STORAGE_S3_ACCESS_KEY/);
  });
});
