/**
 * The fs driver's file stream: exact ranges in chunks, chunk memory reused only once the
 * consumer hands it back (and never while it still holds it), and the file closed on
 * every way out: the end, destroy, abort and a file cut short under it.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { fstatSync, openSync } from 'node:fs';
import { rm, truncate, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { once } from 'node:events';
import { after, before, describe, it } from 'node:test';
import { createStorage, StorageError } from '../../../src/index.js';
import { FileReadStream } from '../../../src/drivers/fs/read-stream.js';
import { tempRoot } from './helpers.js';

const CHUNK = 64 * 1024;
let dir: string;
let file: string;
const data = randomBytes(5 * CHUNK + 1234);

before(async () => {
  dir = await tempRoot('read-stream');
  file = join(dir, 'data.bin');
  await writeFile(file, data);
});
after(() => rm(dir, { recursive: true, force: true }));

function isOpen(fd: number): boolean {
  try {
    fstatSync(fd);
    return true;
  } catch {
    return false;
  }
}

/** Pulls one chunk (null at the end). */
async function next(stream: FileReadStream): Promise<Buffer | null> {
  const chunk = stream.read() as Buffer | null;
  if (chunk !== null || stream.readableEnded) return chunk;
  await Promise.race([once(stream, 'readable'), once(stream, 'end')]);
  return stream.read() as Buffer | null;
}

describe('fs driver: file stream', () => {
  it('yields exactly the range, in chunks, then closes the file', async () => {
    const fd = openSync(file, 'r');
    const stream = new FileReadStream(fd, { start: 1000, end: 4 * CHUNK + 17, chunkBytes: CHUNK });
    const chunks: Buffer[] = [];
    for await (const chunk of stream) chunks.push(chunk as Buffer);
    assert.deepEqual(Buffer.concat(chunks), data.subarray(1000, 4 * CHUNK + 17));
    assert.ok(chunks.every((c) => c.length <= CHUNK));
    assert.equal(stream.closed, true);
    assert.equal(isOpen(fd), false, 'the file is closed at the end');
  });

  it('reads into a released chunk again, and never into one still held', async () => {
    const stream = new FileReadStream(openSync(file, 'r'), { start: 0, end: data.length, chunkBytes: CHUNK });
    const held = await next(stream);
    assert.ok(held);
    const heldCopy = Buffer.from(held);
    const released = await next(stream);
    assert.ok(released);
    const releasedMemory = released.buffer;
    stream.release(released);
    stream.release(released); // twice: ignored, or two reads would share its memory
    stream.release(Buffer.alloc(CHUNK)); // not ours: ignored
    const seen: Buffer[] = [];
    for (let chunk = await next(stream); chunk; chunk = await next(stream)) seen.push(chunk);
    assert.deepEqual(Buffer.concat([heldCopy, data.subarray(CHUNK, 2 * CHUNK), ...seen]), data);
    assert.deepEqual(held, heldCopy, 'a chunk not handed back is never overwritten');
    const reused = seen.filter((c) => c.buffer === releasedMemory);
    assert.equal(reused.length, 1, 'the released chunk was read into exactly once more');
    assert.equal(new Set(seen.map((c) => c.buffer)).size, seen.length, 'no two live chunks share memory');
  });

  it('closes the file when destroyed half way, or with an error (as a cancel does)', async () => {
    const fd = openSync(file, 'r');
    const stream = new FileReadStream(fd, { start: 0, end: data.length, chunkBytes: CHUNK });
    await next(stream);
    stream.destroy();
    await once(stream, 'close');
    assert.equal(isOpen(fd), false);

    const fd2 = openSync(file, 'r');
    const cancelled = new FileReadStream(fd2, { start: 0, end: data.length, chunkBytes: CHUNK });
    await next(cancelled);
    cancelled.destroy(new StorageError('E_ABORTED', 'cancelled'));
    const [err] = (await once(cancelled, 'error')) as [StorageError];
    assert.equal(err.code, 'E_ABORTED');
    if (!cancelled.closed) await once(cancelled, 'close');
    assert.equal(isOpen(fd2), false);
  });

  it('fails, rather than ending early, when the file is cut short under it', async () => {
    const short = join(dir, 'short.bin');
    await writeFile(short, data);
    const fd = openSync(short, 'r');
    const stream = new FileReadStream(fd, { start: 0, end: data.length, chunkBytes: CHUNK });
    await truncate(short, 2 * CHUNK);
    const chunks: Buffer[] = [];
    await assert.rejects(
      async () => {
        for await (const chunk of stream) chunks.push(chunk as Buffer);
      },
      (err: unknown) => err instanceof StorageError && err.code === 'E_UNAVAILABLE' && /ended at byte 131072/.test(err.message),
    );
    assert.equal(Buffer.concat(chunks).length, 2 * CHUNK);
    assert.equal(isOpen(fd), false);
  });

  it('is what the driver streams large objects with, offering release', async () => {
    const storage = createStorage({ driver: 'fs', root: join(dir, 'store') });
    await storage.put('large.bin', data);
    const object = await storage.getStream('large.bin', { range: { start: 10 } });
    assert.ok(object.stream instanceof FileReadStream);
    assert.ok(object.release);
    const chunks: Buffer[] = [];
    for await (const chunk of object.stream) {
      chunks.push(Buffer.from(chunk as Buffer));
      object.release(chunk as Buffer);
    }
    assert.deepEqual(Buffer.concat(chunks), data.subarray(10));
  });
});
