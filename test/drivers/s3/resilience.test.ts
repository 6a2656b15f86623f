/**
 * Retries, timeouts and clean-up of the S3 driver against the real RGW, with failures
 * injected by a loopback proxy: what is temporary is retried (honouring Retry-After),
 * what is permanent fails fast, failed multipart uploads are aborted, and a stalled
 * download ends in E_TIMEOUT.
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { ListMultipartUploadsCommand } from '@aws-sdk/client-s3';
import { after, before, beforeEach, describe, it } from 'node:test';
import { createStorage, type S3DriverOptions, type Storage } from '../../../src/index.js';
import { collect, rejectsWith } from '../../conformance/harness.js';
import { rawS3Client, s3Options, s3TestEnv, uniqueBucket } from './env.js';
import { startFaultProxy, type FaultProxy } from './fault-proxy.js';

const MiB = 1024 * 1024;
let proxy: FaultProxy;
let bucket: string;

function viaProxy(extra: Partial<S3DriverOptions> = {}): Storage {
  return createStorage({ driver: 's3', ...s3Options(bucket, { endpoint: proxy.url, retry: { baseDelayMs: 5, throttleBaseDelayMs: 10 }, ...extra }) });
}

async function openUploads(): Promise<number> {
  const client = rawS3Client();
  const out = await client.send(new ListMultipartUploadsCommand({ Bucket: bucket }));
  client.destroy();
  return out.Uploads?.length ?? 0;
}

/** A body of unknown length: `parts` MiB of random bytes, 1 MiB at a time, and its digest. */
function stream(mib: number): { body: Readable; sha256: string; data: Buffer } {
  const data = randomBytes(mib * MiB);
  const chunks = Array.from({ length: mib }, (_, i) => data.subarray(i * MiB, (i + 1) * MiB));
  return { body: Readable.from(chunks), sha256: createHash('sha256').update(data).digest('hex'), data };
}

const isPut = (r: { method: string; query: URLSearchParams }) => r.method === 'PUT' && !r.query.has('partNumber');
const isPart = (n: number) => (r: { method: string; query: URLSearchParams }) => r.method === 'PUT' && r.query.get('partNumber') === String(n);

before(async () => {
  proxy = await startFaultProxy(s3TestEnv().endpoint);
  bucket = uniqueBucket('resilience');
  await createStorage({ driver: 's3', ...s3Options(bucket) }).verify({ createBucket: true });
});
after(async () => proxy?.close());
beforeEach(() => proxy.reset());

describe('s3 driver: retries', () => {
  it('retries SlowDown (503) and succeeds', async () => {
    proxy.add({ match: isPut, action: { kind: 'status', status: 503, code: 'SlowDown' }, times: 2 });
    const info = await viaProxy().put('retry/slowdown.txt', 'finally');
    assert.equal(info.size, 7);
    assert.equal(proxy.count('PUT', '/retry/slowdown.txt'), 3);
  });

  it('waits as long as Retry-After asks', async () => {
    proxy.add({ match: isPut, action: { kind: 'status', status: 503, code: 'SlowDown', retryAfterSeconds: 1 }, times: 1 });
    const started = Date.now();
    await viaProxy().put('retry/after.txt', 'x');
    assert.ok(Date.now() - started >= 950, `waited only ${Date.now() - started} ms`);
  });

  it('retries 500 and a reset connection on reads', async () => {
    const storage = viaProxy();
    await storage.put('retry/read.txt', 'readable');
    proxy.add({ match: (r) => r.method === 'GET', action: { kind: 'status', status: 500, code: 'InternalError' }, times: 1 });
    proxy.add({ match: (r) => r.method === 'GET', action: { kind: 'reset' }, times: 1 });
    assert.equal((await storage.get('retry/read.txt')).toString(), 'readable');
    assert.equal(proxy.count('GET', '/retry/read.txt'), 3);
  });

  it('fails fast on AccessDenied and SignatureDoesNotMatch', async () => {
    proxy.add({ match: isPut, action: { kind: 'status', status: 403, code: 'AccessDenied' }, times: 5 });
    await rejectsWith(viaProxy().put('retry/denied.txt', 'x'), 'E_ACCESS_DENIED');
    assert.equal(proxy.count('PUT', '/retry/denied.txt'), 1);
    proxy.reset();
    proxy.add({ match: (r) => r.method === 'GET', action: { kind: 'status', status: 403, code: 'SignatureDoesNotMatch' }, times: 5 });
    await rejectsWith(viaProxy().get('retry/denied.txt'), 'E_ACCESS_DENIED');
    assert.equal(proxy.count('GET'), 1);
  });

  it('never retries a missing key', async () => {
    await rejectsWith(viaProxy().get('retry/missing.txt'), 'E_NOT_FOUND');
    assert.equal(proxy.count('GET', '/retry/missing.txt'), 1);
  });

  it('gives up after 3 attempts with E_UNAVAILABLE saying so', async () => {
    proxy.add({ match: isPut, action: { kind: 'status', status: 503, code: 'SlowDown' }, times: 10 });
    const err = await rejectsWith(viaProxy().put('retry/never.txt', 'x'), 'E_UNAVAILABLE', 'after 3 attempts');
    assert.equal(err.details?.attempts, 3);
    assert.equal(err.details?.providerCode, 'SlowDown');
    assert.equal(err.retryable, true);
    assert.equal(proxy.count('PUT', '/retry/never.txt'), 3);
  });
});

describe('s3 driver: multipart failures', () => {
  const small = { multipartThreshold: 5 * MiB, partSize: 5 * MiB };

  it('retries a failed part and completes intact', async () => {
    proxy.add({ match: isPart(2), action: { kind: 'status', status: 500, code: 'InternalError' }, times: 1 });
    const { body, sha256, data } = stream(12);
    const storage = viaProxy(small);
    const info = await storage.put('mp/retried.bin', body);
    assert.equal(info.sha256, sha256);
    assert.equal(proxy.seen.filter((r) => r.url.includes('partNumber=2')).length, 2);
    assert.deepEqual(await storage.get('mp/retried.bin'), data);
  });

  it('aborts the upload when a part keeps failing, leaving no parts and no object', async () => {
    proxy.add({ match: isPart(2), action: { kind: 'status', status: 403, code: 'AccessDenied' }, times: 100 });
    await rejectsWith(viaProxy(small).put('mp/failed.bin', stream(12).body), 'E_ACCESS_DENIED');
    assert.equal(await openUploads(), 0, 'no multipart upload is left open');
    assert.equal(await viaProxy().exists('mp/failed.bin'), false);
    assert.equal(proxy.count('DELETE', 'uploadId='), 1, 'the upload was aborted');
  });

  it('aborts on a checksum mismatch and when the body stream fails', async () => {
    const storage = viaProxy(small);
    await rejectsWith(storage.put('mp/bad-sum.bin', stream(11).body, { sha256: '0'.repeat(64) }), 'E_CHECKSUM_MISMATCH');
    async function* failing() {
      yield randomBytes(6 * MiB);
      throw new Error('client went away');
    }
    await rejectsWith(storage.put('mp/broken.bin', failing()), 'E_INVALID_ARGUMENT', 'client went away');
    assert.equal(await openUploads(), 0);
    assert.equal(await storage.exists('mp/bad-sum.bin'), false);
    assert.equal(await storage.exists('mp/broken.bin'), false);
  });
});

describe('s3 driver: timeouts', () => {
  it('ends a stalled download with E_TIMEOUT instead of hanging', async () => {
    const storage = viaProxy({ socketTimeoutMs: 400 });
    await storage.put('timeout/big.bin', randomBytes(2 * MiB));
    proxy.add({ match: (r) => r.method === 'GET', action: { kind: 'stall-body', afterBytes: 64 * 1024 }, times: 1 });
    const started = Date.now();
    const { stream: body } = await storage.getStream('timeout/big.bin');
    await rejectsWith(collect(body), 'E_TIMEOUT');
    assert.ok(Date.now() - started < 5000);
  });

  it('times out requests that get no answer, retries them, then gives up with E_TIMEOUT', async () => {
    const storage = viaProxy({ socketTimeoutMs: 300, retry: { maxAttempts: 2, baseDelayMs: 5 } });
    await storage.put('timeout/small.txt', 'x');
    proxy.add({ match: (r) => r.method === 'HEAD', action: { kind: 'hang' }, times: 2 });
    const started = Date.now();
    await rejectsWith(storage.stat('timeout/small.txt'), 'E_TIMEOUT', 'after 2 attempts');
    assert.ok(Date.now() - started < 3000);
    assert.equal(proxy.count('HEAD', '/timeout/small.txt'), 2);
    assert.equal((await storage.stat('timeout/small.txt')).size, 1, 'works again once the service answers');
  });
});
