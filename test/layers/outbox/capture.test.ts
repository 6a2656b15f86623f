/**
 * The outbox's body capture on a real folder: the chunks that fit the memory budget stay
 * out of the temp file while the backend may still take the body (a healthy write copies
 * only what the budget could not hold), and a body kept partly in memory, partly in the
 * file, in any order, is spooled whole and in order when the write fails.
 */
import assert from 'node:assert/strict';
import { open, readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { describe, it } from 'node:test';
import { PutBody } from '../../../src/core/body.js';
import { StorageError } from '../../../src/index.js';
import { BodyCapture, MemoryBudget } from '../../../src/layers/outbox/capture.js';
import { sha256, tempDir } from './helpers.js';

const CHUNK = 16 * 1024;

/** `count` chunks of CHUNK bytes, none of them zero, each its own pattern. */
function chunks(count: number, seed: number): Buffer[] {
  return Array.from({ length: count }, (_, n) => Buffer.alloc(CHUNK, ((seed * 37 + n * 11) % 255) + 1));
}

const noLimit = () => true;
const neverFull = (size: number) => new StorageError('E_QUOTA_EXCEEDED', `unexpected: ${size}`);

describe('outbox: body capture', () => {
  it('does not copy the chunks the memory budget holds into the temp file while the backend reads the body', async () => {
    const dir = await tempDir('capture');
    const budget = new MemoryBudget(4 * CHUNK);
    const body = chunks(10, 1);
    const capture = new BodyCapture(new PutBody(Readable.from(body)), dir, budget);
    let received = 0;
    for await (const chunk of capture.body()) received += chunk.byteLength;
    assert.equal(received, 10 * CHUNK);
    // The six chunks past the budget went to a temp file at their positions; the first four are only in memory.
    const [name, ...others] = await readdir(dir);
    assert.ok(name !== undefined && others.length === 0, 'one temp file');
    const handle = await open(join(dir, name), 'r');
    try {
      const head = Buffer.alloc(4 * CHUNK);
      const { bytesRead } = await handle.read(head, 0, head.length, 0);
      assert.ok(head.subarray(0, bytesRead).every((byte) => byte === 0), 'the kept chunks were written to the temp file');
    } finally {
      await handle.close();
    }
    await capture.discard();
    assert.deepEqual(await readdir(dir), []);
    assert.equal(budget.take(4 * CHUNK), true, 'the budget was given back whole');
  });

  it('spools a body kept in memory, then in the file, then in memory again (a budget freed meanwhile), whole and in order', async () => {
    const dir = await tempDir('capture');
    const budget = new MemoryBudget(3 * CHUNK);
    const other = new BodyCapture(new PutBody(Readable.from(chunks(1, 9))), dir, budget);
    const body = chunks(8, 2);
    const capture = new BodyCapture(new PutBody(Readable.from(body)), dir, budget);
    const bytes = Buffer.concat(body);
    await other.pull(); // holds one chunk of the budget
    for (let n = 0; n < 4; n++) await capture.pull(); // two kept, two to the file
    await other.discard(); // its chunk is free again: the next one is kept
    for (let n = 0; n < 2; n++) await capture.pull(); // one kept, one to the file
    // The backend failed here: the rest is read and everything lands in one synced file.
    const file = await capture.toFile(noLimit, neverFull);
    assert.equal(file.size, bytes.length);
    assert.equal(file.sha256, sha256(bytes));
    assert.ok((await readFile(file.path)).equals(bytes));
    assert.equal(budget.take(3 * CHUNK), true, 'the budget was given back whole');
    await capture.discard();
  });
});
