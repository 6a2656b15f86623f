/**
 * The fs driver's small-object cache: hits are served from memory only while a stat
 * proves the file unchanged, so every way a file can change (our writes, other
 * programs' writes in place or by rename, deletes, symlink swaps) is seen at once.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { readFile, rename, rm, stat, symlink, truncate, unlink, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';
import { createStorage, createStorageFromEnv, FsDriver, StorageError, type Storage } from '../../../src/index.js';
import { CACHEABLE_BYTES, SETTLE_MS } from '../../../src/drivers/fs/cache.js';
import { readAll } from '../../../src/core/body.js';
import { rejectsWith } from '../../conformance/harness.js';
import { tempRoot } from './helpers.js';

const cleanups: (() => Promise<unknown>)[] = [];
after(async () => {
  for (const clean of cleanups.reverse()) await clean();
});

/** Each test's objects, written once up front so one wait lets them all settle. */
const KEYS = ['hit', 'herd', 'range', 'owned', 'overwrite', 'in-place', 'truncated', 'deleted', 'swapped', 'renamed', 'stat', 'large', 'large-stat', 'large-read', 'lru/1', 'lru/2', 'lru/3', 'lru/4'] as const;
const content = new Map<string, Buffer>();
let dir: string;
let storage: Storage;
let driver: FsDriver;
/** A second storage over the same root with a 3 KiB cache. */
let small: Storage;

function stats(of: Storage = storage) {
  const found = (of.driver as FsDriver).cacheStats;
  assert.ok(found, 'the cache is on');
  return found;
}

before(async () => {
  dir = await tempRoot('cache');
  cleanups.push(() => rm(dir, { recursive: true, force: true }));
  storage = createStorage({ driver: 'fs', root: dir });
  driver = storage.driver as FsDriver;
  small = createStorage({ driver: 'fs', root: dir, cacheBytes: 3 * 1024 });
  for (const key of KEYS) {
    const bytes = randomBytes(key.startsWith('large') ? CACHEABLE_BYTES + 1 : 1024);
    content.set(key, bytes);
    await storage.put(key, bytes, { contentType: 'image/png', metadata: { owner: 'ada' } });
  }
  // Files are cached only once their ctime is SETTLE_MS old (see cache.ts).
  await sleep(SETTLE_MS + 100);
});

describe('fs driver: small-object cache', () => {
  it('serves a settled object from memory after the first read, with the same bytes and info', async () => {
    const info = await storage.stat('hit');
    const first = await storage.get('hit');
    const { hits } = stats();
    const second = await storage.getStream('hit');
    assert.equal(stats().hits, hits + 1);
    assert.deepEqual(first, content.get('hit'));
    assert.deepEqual(second.bytes, content.get('hit'));
    assert.deepEqual(second.info, info);
    assert.deepEqual(second.info.metadata, { owner: 'ada' });
    // Its stream yields the same bytes, for callers that want one.
    const chunks: Buffer[] = [];
    for await (const chunk of second.stream) chunks.push(chunk as Buffer);
    assert.deepEqual(Buffer.concat(chunks), content.get('hit'));
  });

  it('checks a hot object once per event-loop turn for all the reads resumed in it', async () => {
    await storage.get('herd');
    const before = stats();
    const reads = await Promise.all(Array.from({ length: 10 }, () => storage.get('herd')));
    for (const bytes of reads) assert.deepEqual(bytes, content.get('herd'));
    assert.equal(stats().hits - before.hits, 10);
    assert.equal(stats().checks - before.checks, 1, 'ten reads that arrived together share one stat');
    // Reads one after the other each cross a turn, so each is checked: a change between them is seen.
    await storage.get('herd');
    await storage.get('herd');
    assert.equal(stats().checks - before.checks, 3);
    // A change made before a batch of reads is seen by all of them.
    const replacement = randomBytes(1024);
    await writeFile(join(dir, 'herd'), replacement);
    for (const bytes of await Promise.all(Array.from({ length: 5 }, () => storage.get('herd')))) assert.deepEqual(bytes, replacement);
  });

  it('serves ranges of a cached object, and refuses ones past its end', async () => {
    await storage.get('range');
    const { hits } = stats();
    const part = await storage.getStream('range', { range: { start: 10, end: 19 } });
    assert.deepEqual(part.bytes, content.get('range')?.subarray(10, 20));
    assert.deepEqual(part.range, { start: 10, end: 19 });
    assert.deepEqual(await storage.get('range', { range: { suffix: 5 } }), content.get('range')?.subarray(-5));
    await rejectsWith(storage.get('range', { range: { start: 1024 } }), 'E_RANGE_NOT_SATISFIABLE');
    assert.equal(stats().hits, hits + 3);
  });

  it('hands out copies: changing what a read returned changes nothing cached', async () => {
    await storage.get('owned');
    const got = await storage.getStream('owned');
    got.bytes?.fill(0);
    got.info.metadata.owner = 'mallory';
    got.info.lastModified.setTime(0);
    const again = await storage.getStream('owned');
    assert.deepEqual(again.bytes, content.get('owned'));
    assert.equal(again.info.metadata.owner, 'ada');
    assert.notEqual(again.info.lastModified.getTime(), 0);
  });

  it('sees an overwrite through Storage at once', async () => {
    await storage.get('overwrite');
    await storage.put('overwrite', 'new bytes', { contentType: 'text/plain' });
    assert.equal((await storage.get('overwrite')).toString(), 'new bytes');
    assert.equal((await storage.stat('overwrite')).contentType, 'text/plain');
  });

  it('sees another program change the file in place at once, even at the same size', async () => {
    await storage.get('in-place');
    const path = join(dir, 'in-place');
    const times = join(dir, '.stowage', 'tmp', 'times');
    execFileSync('touch', ['-r', path, times]); // keeps its exact times
    const replacement = randomBytes(1024);
    await writeFile(path, replacement);
    // Even with its mtime put back, the change moved ctime, which no one can set.
    execFileSync('touch', ['-r', times, path]);
    assert.equal((await stat(path, { bigint: true })).mtimeNs, (await stat(times, { bigint: true })).mtimeNs);
    assert.deepEqual(await storage.get('in-place'), replacement);
    await storage.get('truncated');
    await truncate(join(dir, 'truncated'), 10);
    assert.deepEqual(await storage.get('truncated'), content.get('truncated')?.subarray(0, 10));
  });

  it('sees a file renamed over the key with the cached size and mtime (a new inode)', async () => {
    await storage.get('renamed');
    const cached = await stat(join(dir, 'renamed'));
    const other = join(dir, '.stowage', 'tmp', 'other-tool');
    const replacement = randomBytes(1024);
    await writeFile(other, replacement);
    await utimes(other, cached.atime, cached.mtimeMs / 1000);
    await rename(other, join(dir, 'renamed'));
    assert.deepEqual(await storage.get('renamed'), replacement);
  });

  it('reports a deleted object as not found, whoever deleted it', async () => {
    await storage.get('deleted');
    await unlink(join(dir, 'deleted'));
    await rejectsWith(storage.get('deleted'), 'E_NOT_FOUND');
    await rejectsWith(storage.stat('deleted'), 'E_NOT_FOUND');
  });

  it('does not follow a symlink swapped in for a cached file that leads out of the root', async () => {
    await storage.get('swapped');
    const outside = await tempRoot('cache-outside');
    cleanups.push(() => rm(outside, { recursive: true, force: true }));
    await writeFile(join(outside, 'secret'), content.get('swapped') as Buffer);
    await unlink(join(dir, 'swapped'));
    await symlink(join(outside, 'secret'), join(dir, 'swapped'));
    await rejectsWith(storage.get('swapped'), 'E_NOT_FOUND');
  });

  it('answers stat (HEAD) from the cache too', async () => {
    await storage.get('stat');
    const { hits } = stats();
    assert.equal((await storage.stat('stat')).size, 1024);
    assert.equal(stats().hits, hits + 1);
  });

  it('does not cache a file written less than SETTLE_MS ago, nor one over 64 KiB', async () => {
    await storage.put('fresh', 'just written');
    await storage.get('fresh');
    await storage.get('large');
    const { hits } = stats();
    assert.equal((await storage.get('fresh')).toString(), 'just written');
    assert.deepEqual(await storage.get('large'), content.get('large'));
    assert.equal(stats().hits, hits);
  });

  it("keeps a larger object's info for stat, never its bytes, and never a replaced version's", async () => {
    const { hits, entries } = stats();
    const first = await storage.stat('large-stat');
    assert.deepEqual(await storage.stat('large-stat'), first);
    assert.deepEqual([stats().hits, stats().entries], [hits + 1, entries + 1], 'the second stat is answered from memory');
    assert.deepEqual(await storage.get('large-stat'), content.get('large-stat'));
    assert.equal(stats().hits, hits + 1, 'its bytes are read from disk');
    const replaced = randomBytes(CACHEABLE_BYTES + 2);
    await storage.put('large-stat', replaced, { contentType: 'application/octet-stream' });
    const now = await storage.stat('large-stat');
    assert.deepEqual([now.size, now.contentType, now.sha256], [replaced.length, 'application/octet-stream', createHash('sha256').update(replaced).digest('hex')]);
  });

  it('reads a larger object stat\'ed just before (a variant\'s original) without reading its sidecar again', async () => {
    await storage.stat('large-read');
    // The sidecar on disk now names another type, which only a read of it would report.
    const sidecar = join(dir, '.stowage/meta/large-read');
    await writeFile(sidecar, (await readFile(sidecar, 'utf8')).replace('image/png', 'text/x-sidecar-read'));
    const read = await storage.getStream('large-read');
    assert.equal(read.info.contentType, 'image/png', 'the info the stat kept, for the very file opened');
    assert.deepEqual(await readAll(read.stream), content.get('large-read'), 'its bytes, from disk');
    // Another version of the file (a new inode) has its sidecar read.
    const replaced = randomBytes(CACHEABLE_BYTES + 3);
    await storage.put('large-read', replaced, { contentType: 'image/webp' });
    const again = await storage.getStream('large-read');
    assert.equal(again.info.contentType, 'image/webp');
    again.stream.destroy();
  });

  it('stays within its budget, evicting the least recently used object', async () => {
    for (const key of ['lru/1', 'lru/2', 'lru/3', 'lru/4']) await small.get(key);
    assert.deepEqual({ entries: stats(small).entries, bytes: stats(small).bytes }, { entries: 3, bytes: 3 * 1024 });
    const { hits } = stats(small);
    await small.get('lru/4');
    assert.equal(stats(small).hits, hits + 1);
    await small.get('lru/1'); // evicted first: read from disk again
    assert.equal(stats(small).hits, hits + 1);
    assert.ok(stats(small).bytes <= stats(small).maxBytes);
  });

  it('is off with cacheBytes 0 and by default with async reads, and refuses a bad size', async () => {
    assert.equal(new FsDriver({ root: dir, cacheBytes: 0 }).cacheStats, undefined);
    assert.equal(new FsDriver({ root: dir, readIo: 'async' }).cacheStats, undefined);
    assert.equal(new FsDriver({ root: dir, readIo: 'async', cacheBytes: 1024 }).cacheStats?.maxBytes, 1024);
    assert.equal(driver.cacheStats?.maxBytes, 32 * 1024 * 1024);
    for (const cacheBytes of [-1, 1.5, Number.NaN]) {
      assert.throws(() => new FsDriver({ root: dir, cacheBytes }), (err) => err instanceof StorageError && err.code === 'E_CONFIG_INVALID' && /cacheBytes/.test(err.message));
    }
    const fromEnv = createStorageFromEnv({ STORAGE_LOCAL_PATH: dir, STORAGE_LOCAL_CACHE_MB: '0' });
    assert.equal((fromEnv.driver as FsDriver).cacheStats, undefined);
    assert.equal((createStorageFromEnv({ STORAGE_LOCAL_PATH: dir, STORAGE_LOCAL_CACHE_MB: '4' }).driver as FsDriver).cacheStats?.maxBytes, 4 * 1024 * 1024);
  });
});
