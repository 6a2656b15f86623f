/** Conformance cases for get, getStream, stat, exists and byte ranges. */
import assert from 'node:assert/strict';
import { it } from 'node:test';
import { collect, rejectsWith } from './harness.js';
import type { StorageGetter } from './suite.js';

const TEXT = '0123456789abcdefghij'; // 20 bytes

export function readCases(storage: StorageGetter): void {
  it('rejects a missing key with E_NOT_FOUND carrying context', async () => {
    const err = await rejectsWith(storage().get('nope/missing.txt'), 'E_NOT_FOUND');
    assert.equal(err.key, 'nope/missing.txt');
    assert.equal(err.operation, 'get');
    assert.equal(err.backend, storage().backend);
    assert.equal(err.retryable, false);
    assert.ok(!err.publicMessage.includes('nope'));
    await rejectsWith(storage().getStream('nope'), 'E_NOT_FOUND');
    await rejectsWith(storage().stat('nope'), 'E_NOT_FOUND');
  });

  it('answers exists for present and missing keys', async () => {
    await storage().put('here', 'x');
    assert.equal(await storage().exists('here'), true);
    assert.equal(await storage().exists('not-here'), false);
    await rejectsWith(storage().exists('../x'), 'E_INVALID_KEY');
  });

  it('treats a key that is only a folder of others as missing', async () => {
    await storage().put('folder/child', 'x');
    assert.equal(await storage().exists('folder'), false);
    await rejectsWith(storage().get('folder'), 'E_NOT_FOUND');
  });

  const ranges: [string, Parameters<ReturnType<StorageGetter>['get']>[1], string, { start: number; end: number }][] = [
    ['the first byte', { range: { start: 0, end: 0 } }, '0', { start: 0, end: 0 }],
    ['the last byte', { range: { start: 19 } }, 'j', { start: 19, end: 19 }],
    ['a middle slice', { range: { start: 5, end: 9 } }, '56789', { start: 5, end: 9 }],
    ['a suffix', { range: { suffix: 3 } }, 'hij', { start: 17, end: 19 }],
    ['a suffix longer than the object (all of it)', { range: { suffix: 500 } }, TEXT, { start: 0, end: 19 }],
    ['an end past the last byte (clamped)', { range: { start: 15, end: 1000 } }, 'fghij', { start: 15, end: 19 }],
  ];
  for (const [name, opts, expected, resolved] of ranges) {
    it(`reads ${name}`, async () => {
      await storage().put('r.txt', TEXT);
      assert.equal((await storage().get('r.txt', opts)).toString(), expected);
      const { stream, info, range } = await storage().getStream('r.txt', opts);
      assert.equal((await collect(stream)).toString(), expected);
      assert.deepEqual(range, resolved);
      assert.equal(info.size, 20);
      // A driver that hands over the bytes too hands over the same ones.
      const { bytes } = await storage().getStream('r.txt', opts);
      if (bytes) assert.equal(bytes.toString(), expected);
    });
  }

  it('hands over bytes, when it gives them, that belong to the caller and match the stream', async () => {
    const big = Buffer.alloc(300 * 1024, 7);
    await storage().put('b.bin', big);
    for (const key of ['r.txt', 'b.bin']) {
      if (key === 'r.txt') await storage().put('r.txt', TEXT);
      const expected = key === 'r.txt' ? Buffer.from(TEXT) : big;
      const first = await storage().getStream(key);
      if (first.bytes) {
        assert.deepEqual(first.bytes, expected);
        first.bytes.fill(0);
      }
      assert.deepEqual(await collect((await storage().getStream(key)).stream), expected);
      assert.deepEqual(await storage().get(key), expected);
    }
  });

  it('rejects a range starting past the end', async () => {
    await storage().put('r.txt', TEXT);
    await rejectsWith(storage().get('r.txt', { range: { start: 20 } }), 'E_RANGE_NOT_SATISFIABLE');
    await rejectsWith(storage().getStream('r.txt', { range: { start: 1000, end: 2000 } }), 'E_RANGE_NOT_SATISFIABLE');
  });

  it('rejects a zero suffix and any range of an empty object', async () => {
    await storage().put('r.txt', TEXT);
    await storage().put('empty', '');
    await rejectsWith(storage().get('r.txt', { range: { suffix: 0 } }), 'E_RANGE_NOT_SATISFIABLE');
    await rejectsWith(storage().get('empty', { range: { start: 0 } }), 'E_RANGE_NOT_SATISFIABLE');
    await rejectsWith(storage().get('empty', { range: { suffix: 1 } }), 'E_RANGE_NOT_SATISFIABLE');
  });

  it('rejects malformed ranges', async () => {
    await storage().put('r.txt', TEXT);
    await rejectsWith(storage().get('r.txt', { range: { start: 5, end: 4 } }), 'E_INVALID_ARGUMENT', 'range');
    await rejectsWith(storage().get('r.txt', { range: { start: -1 } }), 'E_INVALID_ARGUMENT');
    await rejectsWith(storage().get('r.txt', { range: { start: 1.5 } }), 'E_INVALID_ARGUMENT');
    await rejectsWith(storage().get('r.txt', { range: { suffix: -2 } }), 'E_INVALID_ARGUMENT');
  });

  it('streams the version that was opened, even if the key is overwritten meanwhile', async () => {
    await storage().put('snap', Buffer.alloc(3 * 1024 * 1024, 1));
    const { stream, info } = await storage().getStream('snap');
    await storage().put('snap', Buffer.alloc(10, 2));
    const data = await collect(stream);
    assert.equal(data.length, info.size);
    assert.ok(data.every((b) => b === 1));
    assert.equal((await storage().get('snap')).length, 10);
  });

  it('returns copies, so changing a result cannot change the stored object', async () => {
    await storage().put('immutable', 'abc');
    const first = await storage().get('immutable');
    first[0] = 0x7a;
    assert.equal((await storage().get('immutable')).toString(), 'abc');
  });
}
