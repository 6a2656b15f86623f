/**
 * What a GET of the HTTP service costs the S3 backend, counted at a proxy in front of
 * the real RGW: one request for the object, one for a 304 (If-None-Match travels with
 * the GetObject, no HEAD first), and one for a 416 where the service names the size in
 * its answer (AWS, MinIO), which the proxy plays since RGW 16 leaves the size out.
 */
import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, it } from 'node:test';
import type { FastifyInstance } from 'fastify';
import { buildApp, createStorage, type Storage } from '../../../src/index.js';
import { s3Options, s3TestEnv, uniqueBucket } from '../../drivers/s3/env.js';
import { startFaultProxy, type FaultProxy } from '../../drivers/s3/fault-proxy.js';

const TEXT = '0123456789abcdefghij'; // 20 bytes
const KEY = 'trips/object.txt';

let proxy: FaultProxy;
let storage: Storage;
let app: FastifyInstance;
let base: string;
let etag: string;

before(async () => {
  proxy = await startFaultProxy(s3TestEnv().endpoint);
  storage = createStorage({ driver: 's3', ...s3Options(uniqueBucket('trips'), { endpoint: proxy.url }) });
  await storage.verify({ createBucket: true });
  ({ etag } = await storage.put(KEY, TEXT, { contentType: 'text/plain', cacheControl: 'max-age=60' }));
  app = await buildApp({ storage, logger: false });
  base = await app.listen({ host: '127.0.0.1', port: 0 });
});
after(async () => {
  await app?.close();
  await proxy?.close();
});
beforeEach(() => proxy.reset());

/** The requests for the object that reached the backend (or the proxy playing it), as `METHOD` strings. */
function backendRequests(): string[] {
  return proxy.seen.filter((r) => r.url.includes(KEY)).map((r) => r.method);
}

function get(headers: Record<string, string> = {}): Promise<Response> {
  return fetch(`${base}/api/objects/${KEY}`, { headers });
}

describe('http on S3: one backend request per GET', () => {
  it('serves the object and a range with one GetObject each', async () => {
    const whole = await get();
    assert.equal(whole.status, 200);
    assert.equal(await whole.text(), TEXT);
    assert.deepEqual(backendRequests(), ['GET']);
    proxy.reset();
    const part = await get({ range: 'bytes=5-9' });
    assert.equal(part.status, 206);
    assert.equal(part.headers.get('content-range'), 'bytes 5-9/20');
    assert.equal(await part.text(), '56789');
    assert.deepEqual(backendRequests(), ['GET']);
  });

  it('answers a matching If-None-Match with 304 from one conditional GetObject', async () => {
    for (const header of [`"${etag}"`, `W/"${etag}"`]) {
      proxy.reset();
      const res = await get({ 'if-none-match': header });
      assert.equal(res.status, 304, header);
      assert.equal(res.headers.get('etag'), `"${etag}"`);
      assert.match(res.headers.get('content-security-policy') ?? '', /sandbox/, 'a 304 stays inert');
      assert.equal(await res.text(), '');
      assert.deepEqual(backendRequests(), ['GET'], `${header}: no HEAD before the GET`);
    }
    proxy.reset();
    // The condition comes before the range, also on the service's side.
    assert.equal((await get({ 'if-none-match': `"${etag}"`, range: 'bytes=100-' })).status, 304);
    assert.deepEqual(backendRequests(), ['GET']);
  });

  it('serves the content for another ETag from that same one request', async () => {
    const res = await get({ 'if-none-match': '"another-etag"' });
    assert.equal(res.status, 200);
    assert.equal(await res.text(), TEXT);
    assert.deepEqual(backendRequests(), ['GET']);
  });

  it('answers 416 with the size from the error when the service names it, in one request', async () => {
    const isRangedGet = (r: { method: string; url: string }) => r.method === 'GET' && r.url.includes(KEY);
    // AWS puts the size in the error document, MinIO (and RFC 9110) in Content-Range.
    const services = [
      { fields: { ActualObjectSize: '20', RangeRequested: 'bytes=100-' } },
      { headers: { 'content-range': 'bytes */20' } },
    ];
    for (const answer of services) {
      for (const headers of [{ range: 'bytes=100-' }, { range: 'bytes=100-', 'if-none-match': '"another-etag"' }] as Record<string, string>[]) {
        proxy.reset();
        proxy.add({ match: isRangedGet, action: { kind: 'status', status: 416, code: 'InvalidRange', ...answer }, times: 1 });
        const res = await get(headers);
        assert.equal(res.status, 416);
        assert.equal(res.headers.get('content-range'), 'bytes */20');
        assert.deepEqual(backendRequests(), ['GET'], JSON.stringify({ answer, headers }));
      }
    }
  });

  it("answers 416 with the size from a HEAD when the service leaves it out (Ceph RGW 16's own 416)", async () => {
    for (const headers of [{ range: 'bytes=100-' }, { range: 'bytes=100-', 'if-none-match': '"another-etag"' }] as Record<string, string>[]) {
      proxy.reset();
      const res = await get(headers);
      assert.equal(res.status, 416);
      assert.equal(res.headers.get('content-range'), 'bytes */20');
      assert.equal(((await res.json()) as { error: { code: string } }).error.code, 'E_RANGE_NOT_SATISFIABLE');
      assert.deepEqual(backendRequests(), ['GET', 'HEAD'], JSON.stringify(headers));
    }
  });

  it('answers a zero suffix with 416 from a single HEAD', async () => {
    const res = await get({ range: 'bytes=-0' });
    assert.equal(res.status, 416);
    assert.equal(res.headers.get('content-range'), 'bytes */20');
    assert.deepEqual(backendRequests(), ['HEAD']);
  });
});
