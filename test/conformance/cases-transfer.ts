/**
 * Conformance cases for following a transfer: `onProgress` on writes, reads and copies
 * (bytes that only grow, a known total where there is one, a last call with all bytes),
 * and `toWeb()`, which hands an object to a fetch `Response` as a web stream.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { it } from 'node:test';
import { createStorage, type TransferProgress } from '../../src/index.js';
import { chunked, collect, sha256 } from './harness.js';
import type { StorageGetter } from './suite.js';

/** Records progress calls. */
function recorder(): { calls: TransferProgress[]; onProgress: (p: TransferProgress) => void } {
  const calls: TransferProgress[] = [];
  return { calls, onProgress: (p) => calls.push({ ...p }) };
}

/** Progress only grows, never passes the total, and ends with all `size` bytes. */
function assertProgress(calls: TransferProgress[], size: number, total: number | undefined, what: string): void {
  assert.ok(calls.length > 0, `${what}: onProgress was called`);
  for (let i = 1; i < calls.length; i++) assert.ok((calls[i]?.bytes ?? 0) >= (calls[i - 1]?.bytes ?? 0), `${what}: bytes only grow`);
  for (const call of calls.slice(0, -1)) {
    assert.ok(call.bytes <= size, `${what}: never more than the size`);
    assert.equal(call.total, total, `${what}: the total while it moves`);
  }
  assert.deepEqual(calls.at(-1), { bytes: size, total: size }, `${what}: the last call has every byte`);
}

const LARGE = 3 * 1024 * 1024;

export function transferCases(storage: StorageGetter): void {
  it('reports the progress of writes: a buffer with its size, a stream of unknown length, a file with its size', async () => {
    const data = randomBytes(LARGE);
    const buffer = recorder();
    await storage().put('progress/buffer.bin', data, { onProgress: buffer.onProgress });
    assertProgress(buffer.calls, LARGE, LARGE, 'put(Buffer)');

    const parts = [data.subarray(0, 1024 * 1024), data.subarray(1024 * 1024, 2 * 1024 * 1024), data.subarray(2 * 1024 * 1024)];
    const stream = recorder();
    await storage().put('progress/stream.bin', chunked(...parts), { onProgress: stream.onProgress });
    assertProgress(stream.calls, LARGE, undefined, 'put(stream)');
    assert.ok(stream.calls.length >= 3, 'a call per chunk at least');

    const dir = await mkdtemp(join(tmpdir(), 'stowage-progress-'));
    try {
      const file = join(dir, 'file.bin');
      await writeFile(file, data);
      const fromFile = recorder();
      await storage().putFile('progress/file.bin', file, { onProgress: fromFile.onProgress });
      assertProgress(fromFile.calls, LARGE, LARGE, 'putFile');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
    assert.equal((await storage().stat('progress/file.bin')).sha256, sha256(data));
  });

  it('reports the progress of reads, whole and by range, streamed or in memory', async () => {
    const data = randomBytes(LARGE);
    await storage().put('progress/large.bin', data);
    await storage().put('progress/small.txt', 'small');

    const streamed = recorder();
    const reader = await storage().getStream('progress/large.bin', { onProgress: streamed.onProgress });
    assert.equal(sha256(await collect(reader.stream)), sha256(data));
    assertProgress(streamed.calls, LARGE, LARGE, 'getStream');

    const ranged = recorder();
    const part = await storage().get('progress/large.bin', { range: { start: 10, end: 2 * 1024 * 1024 + 9 }, onProgress: ranged.onProgress });
    assert.equal(part.length, 2 * 1024 * 1024);
    assertProgress(ranged.calls, part.length, part.length, 'get(range)');

    const small = recorder();
    assert.equal((await storage().get('progress/small.txt', { onProgress: small.onProgress })).toString(), 'small');
    assertProgress(small.calls, 5, 5, 'get(small)');
  });

  it('reports the progress of a copy from another storage', async () => {
    const source = createStorage({ driver: 'memory' });
    const data = randomBytes(LARGE);
    await source.put('from/video.mp4', data, { contentType: 'video/mp4' });
    const copy = recorder();
    const info = await storage().copyFrom(source, 'from/video.mp4', 'to/video.mp4', { onProgress: copy.onProgress });
    assert.equal(info.copiedBy, 'stream');
    assertProgress(copy.calls, LARGE, undefined, 'copyFrom');
    assert.equal((await storage().stat('to/video.mp4')).sha256, sha256(data));
  });

  it('hands objects to a fetch Response as web streams, whole and by range', async () => {
    const data = randomBytes(LARGE);
    await storage().put('web/large.bin', data, { contentType: 'application/octet-stream' });
    await storage().put('web/small.json', '{"ok":true}', { contentType: 'application/json' });
    const large = await storage().getStream('web/large.bin');
    const response = new Response(large.toWeb(), { headers: { 'content-type': large.info.contentType } });
    assert.equal(sha256(Buffer.from(await response.arrayBuffer())), sha256(data));
    const small = await storage().getStream('web/small.json');
    assert.deepEqual(await new Response(small.toWeb()).json(), { ok: true });
    const range = await storage().getStream('web/large.bin', { range: { suffix: 100 } });
    assert.deepEqual(Buffer.from(await new Response(range.toWeb()).arrayBuffer()), data.subarray(LARGE - 100));
  });
}
