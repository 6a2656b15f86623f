/**
 * Read-only use never creates or changes anything: reads, listings, stats and checks of
 * a folder that does not exist fail with E_BUCKET_NOT_FOUND naming it (a typo in a
 * location shows at once) and create nothing; on a plain folder they leave it byte for
 * byte as it was (no `.stowage/`). The first write creates the root and `.stowage/`, and
 * so does `verify({ createBucket: true })`.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdir, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { createStorage, type Storage } from '../../../src/index.js';
import { rejectsWith } from '../../conformance/harness.js';
import { tempRoot, treeSnapshot } from './helpers.js';

const cleanups: (() => Promise<unknown>)[] = [];
after(async () => {
  for (const clean of cleanups.reverse()) await clean();
});

async function scratch(label: string): Promise<string> {
  const dir = await tempRoot(label);
  cleanups.push(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

/** Every read-only call of the API, each settled (a rejection is part of what is checked). */
async function readEverything(storage: Storage): Promise<PromiseSettledResult<unknown>[]> {
  return Promise.allSettled([
    storage.stat('photos/a.jpg'),
    storage.get('photos/a.jpg'),
    storage.get('photos/a.jpg', { range: { start: 1, end: 3 } }),
    storage.getStream('notes/readme.txt').then(async ({ stream }) => {
      for await (const _chunk of stream);
    }),
    storage.exists('photos/missing.jpg'),
    storage.list(),
    storage.list({ prefix: 'photos/', delimiter: '/' }),
    (async () => {
      for await (const _info of storage.listAll());
    })(),
    storage.usage(),
    storage.incompleteUploads(),
    storage.health(),
    storage.verify(),
  ]);
}

describe('fs driver: read-only use creates nothing', () => {
  for (const readIo of ['sync', 'async'] as const) {
    it(`fails reads, listings and checks of a missing folder with E_BUCKET_NOT_FOUND naming it, creating nothing (${readIo} reads)`, async () => {
      const parent = await scratch(`missing-root-${readIo}`);
      const root = join(parent, 'no', 'such', 'dir');
      const storage = createStorage({ driver: 'fs', root, readIo });
      for (const result of await readEverything(storage)) {
        if (result.status === 'fulfilled') {
          // health never rejects, and there are no uploads to list on fs.
          const value = result.value as { ok?: boolean; detail?: { code?: string } } | unknown[];
          if (Array.isArray(value)) continue;
          assert.equal(value?.ok, false);
          assert.equal(value?.detail?.code, 'E_BUCKET_NOT_FOUND');
          continue;
        }
        const err = result.reason as { code: string; message: string };
        assert.equal(err.code, 'E_BUCKET_NOT_FOUND', err.message);
        assert.match(err.message, new RegExp(`storage root ${root.replaceAll('/', '\\/')} does not exist`));
      }
      await rejectsWith(storage.delete('photos/a.jpg'), 'E_BUCKET_NOT_FOUND');
      await rejectsWith(storage.copy('photos/a.jpg', 'b.jpg'), 'E_BUCKET_NOT_FOUND');
      await rejectsWith(storage.move('photos/a.jpg', 'b.jpg'), 'E_BUCKET_NOT_FOUND');
      assert.deepEqual(await readdir(parent), [], 'nothing was created');
    });
  }

  it('leaves a plain folder byte for byte as it was after reads, listings, stats and checks', async () => {
    const root = await scratch('plain');
    await mkdir(join(root, 'photos', 'empty'), { recursive: true });
    await writeFile(join(root, 'photos', 'a.jpg'), 'not really a jpeg');
    await mkdir(join(root, 'notes'));
    await writeFile(join(root, 'notes', 'readme.txt'), 'x'.repeat(300 * 1024)); // streamed, past the small-read size
    const before = await treeSnapshot(root);
    for (const readIo of ['sync', 'async'] as const) {
      const storage = createStorage({ driver: 'fs', root, readIo, cacheBytes: 1024 * 1024 });
      for (const result of await readEverything(storage)) assert.equal(result.status, 'fulfilled', String((result as PromiseRejectedResult).reason));
      assert.deepEqual((await storage.list()).objects.map((o) => o.key), ['notes/readme.txt', 'photos/a.jpg']);
      assert.equal((await storage.health()).ok, true);
    }
    assert.deepEqual(await treeSnapshot(root), before);
  });

  it('creates the root and .stowage/ at the first write, or with verify({ createBucket: true })', async () => {
    const parent = await scratch('first-write');
    const byWrite = createStorage({ driver: 'fs', root: join(parent, 'by-write', 'uploads') });
    await rejectsWith(byWrite.list(), 'E_BUCKET_NOT_FOUND');
    await byWrite.put('a.txt', 'first');
    assert.deepEqual((await readdir(join(parent, 'by-write', 'uploads'))).sort(), ['.stowage', 'a.txt']);
    assert.deepEqual((await byWrite.list()).objects.map((o) => o.key), ['a.txt'], 'a root made after a failed read is found');

    const byVerify = createStorage({ driver: 'fs', root: join(parent, 'by-verify') });
    await rejectsWith(byVerify.verify(), 'E_BUCKET_NOT_FOUND', 'does not exist');
    const facts = await byVerify.verify({ createBucket: true });
    assert.equal(facts.root, join(parent, 'by-verify'));
    assert.deepEqual((await readdir(join(parent, 'by-verify', '.stowage'))).sort(), ['locks', 'meta', 'tmp']);
    assert.equal((await byVerify.health()).ok, true);
  });

  it('reads a plain folder on a read-only filesystem, and reports it read-only without writing', { skip: process.getuid?.() === 0 ? false : 'mounting a tmpfs needs root' }, async () => {
    const root = await scratch('read-only-fs');
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', root]);
    cleanups.push(async () => execFileSync('umount', [root]));
    await writeFile(join(root, 'kept.txt'), 'on a read-only disk');
    execFileSync('mount', ['-o', 'remount,ro', root]);
    const storage = createStorage({ driver: 'fs', root });
    assert.equal((await storage.get('kept.txt')).toString(), 'on a read-only disk');
    assert.deepEqual((await storage.list()).objects.map((o) => o.key), ['kept.txt']);
    const health = await storage.health();
    assert.equal(health.ok, false);
    assert.equal(health.detail.code, 'E_ACCESS_DENIED');
    assert.match(String(health.detail.error), /read-only/);
    await rejectsWith(storage.put('new.txt', 'x'), 'E_ACCESS_DENIED', 'read-only');
    assert.deepEqual(await readdir(root), ['kept.txt']);
    assert.ok((await stat(join(root, 'kept.txt'))).isFile());
  });
});
