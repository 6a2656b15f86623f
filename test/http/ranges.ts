/**
 * Range headers with positions too large for a JavaScript number to hold exactly, as a
 * suite any backend runs (S3 resolves ranges itself): RFC 9110 says an end past the last
 * byte reaches the last byte (206) and a start past it is unsatisfiable (416), however
 * many digits they have. Never a 400, never the wrong bytes.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { FastifyInstance } from 'fastify';
import { buildApp, type Storage } from '../../src/index.js';

/** Registers the suite for one backend; `makeStorage` builds a fresh storage. */
export function describeHugeRanges(backend: string, makeStorage: () => Promise<Storage>): void {
  describe(`http: huge Range positions (${backend} backend)`, () => {
    let app: FastifyInstance;
    let base: string;

    before(async () => {
      const storage = await makeStorage();
      await storage.put('ranges/ten.txt', '0123456789');
      app = await buildApp({ storage, logger: false });
      base = await app.listen({ host: '127.0.0.1', port: 0 });
    });
    after(async () => app?.close());

    const cases: [string, number, string | null, string | null][] = [
      // Range header, status, Content-Range, body
      ['bytes=0-99999999999999999999', 206, 'bytes 0-9/10', '0123456789'],
      ['bytes=4-9007199254740993', 206, 'bytes 4-9/10', '456789'],
      ['bytes=7-' + '9'.repeat(400), 206, 'bytes 7-9/10', '789'],
      ['bytes=-99999999999999999999', 206, 'bytes 0-9/10', '0123456789'],
      ['bytes=9007199254740993-', 416, 'bytes */10', null],
      ['bytes=9007199254740993-9007199254740999', 416, 'bytes */10', null],
      ['bytes=9007199254740991-', 416, 'bytes */10', null],
      // A last position before the first makes the header invalid: it is ignored (200), even when both round to one number.
      ['bytes=9007199254740995-9007199254740993', 200, null, '0123456789'],
      ['bytes=5-4', 200, null, '0123456789'],
    ];
    for (const [range, status, contentRange, body] of cases) {
      it(`answers Range: ${range.length > 60 ? `${range.slice(0, 40)}...` : range} with ${status}`, async () => {
        const res = await fetch(`${base}/api/objects/ranges/ten.txt`, { headers: { range } });
        assert.equal(res.status, status);
        assert.equal(res.headers.get('content-range'), contentRange);
        const text = await res.text();
        if (body !== null) assert.equal(text, body);
        else assert.equal((JSON.parse(text) as { error: { code: string } }).error.code, 'E_RANGE_NOT_SATISFIABLE');
      });
    }
  });
}
