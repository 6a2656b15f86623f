/**
 * Conformance cases for conditional reads (`ifNoneMatch`) and for the size a range error
 * carries: what lets the HTTP service answer a GET, a 304 and a 416 with one read.
 */
import assert from 'node:assert/strict';
import { it } from 'node:test';
import type { NotModified } from '../../src/index.js';
import { collect, rejectsWith } from './harness.js';
import type { StorageGetter } from './suite.js';

const TEXT = '0123456789abcdefghij'; // 20 bytes

/** Asserts a result is NotModified for `etag`, with the object's info when the driver gives it. */
function assertNotModified(result: Buffer | { notModified?: boolean }, etag: string, size: number): void {
  assert.ok(!Buffer.isBuffer(result) && result.notModified === true, 'not modified, no content');
  const answer = result as NotModified;
  assert.equal(answer.etag, etag);
  assert.equal('stream' in answer || 'bytes' in answer, false, 'nothing was opened');
  if (answer.info) {
    assert.equal(answer.info.etag, etag);
    assert.equal(answer.info.size, size);
  }
}

export function conditionalCases(storage: StorageGetter): void {
  it('answers ifNoneMatch with the current ETag as not modified, with or without quotes and W/', async () => {
    const { etag } = await storage().put('c.txt', TEXT);
    for (const given of [etag, `"${etag}"`, `W/"${etag}"`, ` "${etag}" `]) {
      assertNotModified(await storage().get('c.txt', { ifNoneMatch: given }), etag, 20);
      assertNotModified(await storage().getStream('c.txt', { ifNoneMatch: given }), etag, 20);
    }
  });

  it('reads the content when ifNoneMatch names another ETag, or none', async () => {
    const first = await storage().put('c.txt', 'first');
    const second = await storage().put('c.txt', TEXT);
    assert.notEqual(first.etag, second.etag);
    const content = await storage().get('c.txt', { ifNoneMatch: first.etag });
    assert.ok(Buffer.isBuffer(content));
    assert.equal(content.toString(), TEXT);
    const reader = await storage().getStream('c.txt', { ifNoneMatch: `"${first.etag}"` });
    assert.ok(!reader.notModified);
    assert.equal((await collect(reader.stream)).toString(), TEXT);
    assert.equal(reader.info.etag, second.etag);
    const unconditional = await storage().get('c.txt', { ifNoneMatch: undefined });
    assert.equal(Buffer.isBuffer(unconditional) && unconditional.toString(), TEXT);
  });

  it('checks ifNoneMatch before the range, as HTTP does', async () => {
    const { etag } = await storage().put('c.txt', TEXT);
    assertNotModified(await storage().getStream('c.txt', { ifNoneMatch: etag, range: { start: 100 } }), etag, 20);
    assertNotModified(await storage().getStream('c.txt', { ifNoneMatch: etag, range: { suffix: 0 } }), etag, 20);
    const part = await storage().getStream('c.txt', { ifNoneMatch: 'other', range: { start: 18 } });
    assert.ok(!part.notModified);
    assert.equal((await collect(part.stream)).toString(), 'ij');
    await rejectsWith(storage().getStream('c.txt', { ifNoneMatch: 'other', range: { start: 100 } }), 'E_RANGE_NOT_SATISFIABLE');
  });

  it('still rejects a missing key with E_NOT_FOUND', async () => {
    const { etag } = await storage().put('c.txt', TEXT);
    await rejectsWith(storage().get('c-missing.txt', { ifNoneMatch: etag }), 'E_NOT_FOUND');
    await rejectsWith(storage().getStream('c-missing.txt', { ifNoneMatch: etag }), 'E_NOT_FOUND');
  });

  it('refuses a malformed ifNoneMatch, naming it', async () => {
    await storage().put('c.txt', TEXT);
    for (const bad of ['*', '', '""', 'a b', 'a,b', '"a", "b"', 'caf\u00e9', 42 as unknown as string]) {
      await rejectsWith(storage().get('c.txt', { ifNoneMatch: bad }), 'E_INVALID_ARGUMENT', 'ifNoneMatch');
    }
  });

  it('says the size of the object in a range error', async () => {
    await storage().put('c.txt', TEXT);
    await storage().put('c-empty', '');
    const cases: [string, Parameters<ReturnType<StorageGetter>['getStream']>[1], number][] = [
      ['c.txt', { range: { start: 20 } }, 20],
      ['c.txt', { range: { start: 1000, end: 2000 } }, 20],
      ['c.txt', { range: { suffix: 0 } }, 20],
      ['c-empty', { range: { start: 0 } }, 0],
      ['c-empty', { range: { suffix: 5 } }, 0],
    ];
    for (const [key, opts, size] of cases) {
      const err = await rejectsWith(storage().getStream(key, opts), 'E_RANGE_NOT_SATISFIABLE');
      assert.equal(err.details?.size, size, `${key} ${JSON.stringify(opts)}: details.size`);
      assert.equal(err.key, key);
      assert.equal((await rejectsWith(storage().get(key, opts), 'E_RANGE_NOT_SATISFIABLE')).details?.size, size);
    }
  });
}
