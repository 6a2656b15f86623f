/**
 * Conformance cases for cancelling: an operation whose AbortSignal fires rejects with
 * E_ABORTED (not retryable, a public message that says it was cancelled, never an
 * outage), and a cancelled write stores nothing, leaving any previous version as it was.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { it } from 'node:test';
import { StorageError } from '../../src/index.js';
import { collect, rejectsWith, sha256 } from './harness.js';
import type { StorageGetter } from './suite.js';

/** Checks what every cancellation must say, whatever the operation. */
async function rejectsAsCancelled(promise: Promise<unknown>): Promise<StorageError> {
  const err = await rejectsWith(promise, 'E_ABORTED');
  assert.equal(err.retryable, false, 'a cancel is never worth retrying');
  assert.match(err.publicMessage, /cancelled/);
  return err;
}

/** A body that yields `first`, then waits (like a slow client) until `signal` fires. */
function stallingBody(first: Buffer, signal: AbortSignal, onStalled: () => void): Readable {
  async function* gen() {
    yield first;
    onStalled();
    await new Promise((resolve) => signal.addEventListener('abort', resolve, { once: true }));
    // A source that ignores the cancel and goes on: the write must still store nothing.
    yield randomBytes(1024);
  }
  return Readable.from(gen());
}

export function abortCases(storage: StorageGetter): void {
  it('refuses every operation with a signal that already fired, touching nothing', async () => {
    const s = storage();
    await s.put('abort/existing.txt', 'kept');
    const signal = AbortSignal.abort();
    await rejectsAsCancelled(s.put('abort/new.txt', 'data', { signal }));
    await rejectsAsCancelled(s.put('abort/existing.txt', 'replaced', { signal }));
    await rejectsAsCancelled(s.get('abort/existing.txt', { signal }));
    await rejectsAsCancelled(s.getStream('abort/existing.txt', { signal }));
    await rejectsAsCancelled(s.list({ prefix: 'abort/', signal }));
    await rejectsAsCancelled((async () => {
      for await (const _info of s.listAll({ prefix: 'abort/', signal }));
    })());
    assert.equal(await s.exists('abort/new.txt'), false);
    assert.equal((await s.get('abort/existing.txt')).toString(), 'kept');
  });

  it('cancels a streaming write half way: nothing stored, the previous version intact', async () => {
    const s = storage();
    const before = await s.put('abort/photo.jpg', 'the old photo', { contentType: 'image/jpeg', metadata: { v: '1' } });
    const controller = new AbortController();
    const body = stallingBody(randomBytes(256 * 1024), controller.signal, () => controller.abort());
    const err = await rejectsAsCancelled(s.put('abort/photo.jpg', body, { signal: controller.signal, contentType: 'image/png' }));
    assert.equal(err.key, 'abort/photo.jpg');
    const after = await s.stat('abort/photo.jpg');
    assert.deepEqual({ sha256: after.sha256, size: after.size, type: after.contentType, metadata: after.metadata }, { sha256: before.sha256, size: before.size, type: 'image/jpeg', metadata: { v: '1' } });
    assert.equal((await s.get('abort/photo.jpg')).toString(), 'the old photo');
    const fresh = new AbortController();
    await rejectsAsCancelled(s.put('abort/new.bin', stallingBody(randomBytes(1024), fresh.signal, () => fresh.abort()), { signal: fresh.signal }));
    assert.equal(await s.exists('abort/new.bin'), false);
    assert.deepEqual((await s.list({ prefix: 'abort/' })).objects.map((o) => o.key), ['abort/photo.jpg']);
  });

  it('cancels putFile: nothing stored', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'stowage-abort-'));
    try {
      const file = join(dir, 'big.bin');
      await writeFile(file, randomBytes(2 * 1024 * 1024));
      await rejectsAsCancelled(storage().putFile('abort/file.bin', file, { signal: AbortSignal.abort() }));
      const controller = new AbortController();
      const writing = storage().putFile('abort/file.bin', file, { signal: controller.signal });
      controller.abort();
      // The cancel may come too late for a fast backend: then the write landed whole.
      const outcome = await writing.then((info) => info, (err: unknown) => err);
      if (outcome instanceof StorageError) {
        assert.equal(outcome.code, 'E_ABORTED');
        assert.equal(await storage().exists('abort/file.bin'), false);
      } else {
        assert.equal((await storage().stat('abort/file.bin')).size, 2 * 1024 * 1024);
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('cancels a download half way: the stream fails with E_ABORTED', async () => {
    const s = storage();
    const data = randomBytes(3 * 1024 * 1024);
    await s.put('abort/large.bin', data);
    const controller = new AbortController();
    const { stream } = await s.getStream('abort/large.bin', { signal: controller.signal });
    const chunks = stream[Symbol.asyncIterator]();
    assert.ok(!(await chunks.next()).done);
    controller.abort();
    await rejectsAsCancelled((async () => {
      for (let step = await chunks.next(); !step.done; step = await chunks.next());
    })());
    assert.equal(stream.destroyed, true);
    // The object itself is untouched, and a read without the signal still works.
    assert.equal(sha256(await collect((await s.getStream('abort/large.bin')).stream)), sha256(data));
  });

  it('cancels get of a whole object and reports the reason given to abort()', async () => {
    const s = storage();
    await s.put('abort/doc.txt', 'text');
    const controller = new AbortController();
    controller.abort(new Error('the user left the page'));
    const err = await rejectsAsCancelled(s.get('abort/doc.txt', { signal: controller.signal }));
    assert.match(err.message, /the user left the page/);
    assert.equal((await s.get('abort/doc.txt')).toString(), 'text');
  });
}
