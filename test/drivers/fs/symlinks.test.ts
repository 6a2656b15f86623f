/**
 * Symlinks inside the root must not break per-user isolation: by default none is
 * followed, anywhere in a key's path, for reads, writes, deletes, copies, moves and
 * listings. A write over a link replaces the link itself; a delete of a link is a
 * delete of something that is not an object, so nothing is deleted. Following links
 * that stay inside the root is an explicit option (STORAGE_LOCAL_FOLLOW_SYMLINKS).
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { lstat, readFile, readlink, rm, stat, symlink, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, describe, it } from 'node:test';
import { SETTLE_MS } from '../../../src/drivers/fs/cache.js';
import { buildApp } from '../../../src/http/app.js';
import { createStorage, createStorageFromEnv, type FsDriver, type Storage, type WriteResult } from '../../../src/index.js';
import { rejectsWith } from '../../conformance/harness.js';
import { tempRoot } from './helpers.js';

const cleanups: (() => Promise<unknown>)[] = [];
after(async () => {
  for (const clean of cleanups.reverse()) await clean();
});

const SECRET = 'user 42 only';

/** User 42 has a file; user 43's folder holds links to the root, to 42's folder and to 42's file. */
async function twoUsers(label: string): Promise<string> {
  const dir = await tempRoot(label);
  cleanups.push(() => rm(dir, { recursive: true, force: true }));
  const storage = createStorage({ driver: 'fs', root: dir });
  await storage.put('users/42/secret.txt', SECRET, { metadata: { owner: '42' } });
  await storage.put('users/43/own.txt', 'user 43');
  await symlink('../..', join(dir, 'users', '43', 'up'));
  await symlink('../42', join(dir, 'users', '43', 'peer'));
  await symlink('../42/secret.txt', join(dir, 'users', '43', 'alias.txt'));
  return dir;
}

/** User 42's file is exactly as written, and nothing else appeared in 42's folder. */
async function assert42Untouched(dir: string, storage: Storage<WriteResult>): Promise<void> {
  assert.equal(await readFile(join(dir, 'users', '42', 'secret.txt'), 'utf8'), SECRET);
  const info = await storage.stat('users/42/secret.txt');
  assert.equal(info.sha256, createHash('sha256').update(SECRET).digest('hex'));
  assert.deepEqual((await storage.list({ prefix: 'users/42/' })).objects.map((o) => o.key), ['users/42/secret.txt']);
  await assert.rejects(stat(join(dir, 'users', '42', 'sub')), { code: 'ENOENT' });
}

describe('fs driver: symlinks are not followed by default', () => {
  it('reads, stats and lists nothing through a link, in a folder or as the key itself', async () => {
    const dir = await twoUsers('links-read');
    for (const readIo of ['sync', 'async'] as const) {
      const storage = createStorage({ driver: 'fs', root: dir, readIo });
      for (const key of ['users/43/up/users/42/secret.txt', 'users/43/peer/secret.txt', 'users/43/alias.txt']) {
        await rejectsWith(storage.get(key), 'E_NOT_FOUND');
        await rejectsWith(storage.getStream(key, { range: { start: 0, end: 3 } }), 'E_NOT_FOUND');
        await rejectsWith(storage.stat(key), 'E_NOT_FOUND');
        assert.equal(await storage.exists(key), false);
        await rejectsWith(storage.copy(key, 'users/43/stolen.txt'), 'E_NOT_FOUND');
        await rejectsWith(storage.move(key, 'users/43/moved.txt'), 'E_NOT_FOUND');
      }
      assert.deepEqual((await storage.list({ prefix: 'users/43/' })).objects.map((o) => o.key), ['users/43/own.txt']);
      assert.deepEqual((await storage.list({ prefix: 'users/43/', delimiter: '/' })).prefixes, [], 'a linked folder is no prefix');
      assert.deepEqual((await storage.list()).objects.map((o) => o.key), ['users/42/secret.txt', 'users/43/own.txt']);
      assert.equal(await storage.exists('users/43/stolen.txt'), false);
    }
    await assert42Untouched(dir, createStorage({ driver: 'fs', root: dir }));
  });

  it('writes nothing through a linked folder, and creates no folder through it', async () => {
    const dir = await twoUsers('links-write');
    const storage = createStorage({ driver: 'fs', root: dir });
    await rejectsWith(storage.put('users/43/peer/secret.txt', 'overwritten by 43'), 'E_ACCESS_DENIED', 'symlink');
    await rejectsWith(storage.put('users/43/up/users/42/secret.txt', 'overwritten by 43'), 'E_ACCESS_DENIED', 'symlink');
    await rejectsWith(storage.put('users/43/peer/sub/planted.txt', 'planted'), 'E_ACCESS_DENIED', 'symlink');
    await writeFile(join(dir, 'upload.txt'), 'from a file');
    await rejectsWith(storage.putFile('users/43/peer/from-file.txt', join(dir, 'upload.txt')), 'E_ACCESS_DENIED', 'symlink');
    await rejectsWith(storage.copy('users/43/own.txt', 'users/43/peer/copied.txt'), 'E_ACCESS_DENIED', 'symlink');
    await rejectsWith(storage.move('users/43/own.txt', 'users/43/peer/moved.txt'), 'E_ACCESS_DENIED', 'symlink');
    assert.equal((await storage.get('users/43/own.txt')).toString(), 'user 43', 'the refused move left its source');
    await assert42Untouched(dir, storage);
  });

  it('replaces a link key on write instead of writing through it, and deletes nothing for a link', async () => {
    const dir = await twoUsers('links-replace');
    const storage = createStorage({ driver: 'fs', root: dir });
    await storage.delete('users/43/alias.txt');
    await storage.delete('users/43/peer/secret.txt');
    await storage.delete('users/43/up/users/42/secret.txt');
    await storage.deleteMany({ prefix: 'users/43/' });
    assert.equal(await readlink(join(dir, 'users', '43', 'alias.txt')), '../42/secret.txt', 'a link is not an object: nothing to delete');
    await assert42Untouched(dir, storage);

    await storage.put('users/43/alias.txt', 'written by 43');
    assert.ok((await lstat(join(dir, 'users', '43', 'alias.txt'))).isFile(), 'the link itself was replaced');
    assert.equal((await storage.get('users/43/alias.txt')).toString(), 'written by 43');
    await assert42Untouched(dir, storage);
  });

  it('never serves from the cache a key that became a link', async () => {
    const dir = await twoUsers('links-cache');
    const storage = createStorage({ driver: 'fs', root: dir });
    await storage.put('users/42/copy.txt', 'user 43');
    await sleep(SETTLE_MS + 100); // files are cached once settled (see cache.ts)
    await storage.get('users/43/own.txt');
    await storage.get('users/43/own.txt');
    assert.ok(((storage.driver as FsDriver).cacheStats?.hits ?? 0) > 0, 'own.txt is served from the cache');
    await unlink(join(dir, 'users', '43', 'own.txt'));
    await symlink('../42/copy.txt', join(dir, 'users', '43', 'own.txt')); // same bytes, behind a link
    await rejectsWith(storage.get('users/43/own.txt'), 'E_NOT_FOUND');
    await rejectsWith(storage.stat('users/43/own.txt'), 'E_NOT_FOUND');
  });

  it('serves nothing through a link over HTTP', async () => {
    const dir = await twoUsers('links-http');
    const app = await buildApp({ storage: createStorage({ driver: 'fs', root: dir }), logger: false, accessLog: false });
    cleanups.push(() => app.close());
    const base = await app.listen({ host: '127.0.0.1', port: 0 });
    for (const key of ['users/43/peer/secret.txt', 'users/43/up/users/42/secret.txt', 'users/43/alias.txt']) {
      assert.equal((await fetch(`${base}/api/objects/${key}`)).status, 404, key);
      const put = await fetch(`${base}/api/objects/${key.replace('alias.txt', 'peer/new.txt')}`, { method: 'PUT', body: 'overwritten by 43' });
      assert.equal(put.status, 403, key);
    }
    await assert42Untouched(dir, createStorage({ driver: 'fs', root: dir }));
  });
});

describe('fs driver: following symlinks inside the root, when configured', () => {
  it('follows links that stay inside the root with STORAGE_LOCAL_FOLLOW_SYMLINKS=true (breaking prefix isolation, as documented)', async () => {
    const dir = await twoUsers('links-follow');
    const storage = createStorageFromEnv({ STORAGE_URL: `local:${dir}`, STORAGE_LOCAL_FOLLOW_SYMLINKS: 'true' });
    assert.equal((await storage.get('users/43/peer/secret.txt')).toString(), SECRET);
    assert.equal((await storage.get('users/43/alias.txt')).toString(), SECRET);
    assert.deepEqual((await storage.list({ prefix: 'users/43/' })).objects.map((o) => o.key), ['users/43/alias.txt', 'users/43/own.txt']);
    // A link is removed itself, never what it leads to; a write over a link replaces the link.
    await storage.delete('users/43/alias.txt');
    await assert.rejects(lstat(join(dir, 'users', '43', 'alias.txt')), { code: 'ENOENT' });
    await symlink('../42/secret.txt', join(dir, 'users', '43', 'alias.txt'));
    await storage.put('users/43/alias.txt', 'replaced');
    assert.ok((await lstat(join(dir, 'users', '43', 'alias.txt'))).isFile());
    await assert42Untouched(dir, storage);
    const off = createStorageFromEnv({ STORAGE_URL: `local:${dir}`, STORAGE_LOCAL_FOLLOW_SYMLINKS: 'no' });
    await rejectsWith(off.get('users/43/peer/secret.txt'), 'E_NOT_FOUND');
    assert.throws(() => createStorageFromEnv({ STORAGE_LOCAL_FOLLOW_SYMLINKS: 'sometimes' }), /STORAGE_LOCAL_FOLLOW_SYMLINKS/);
  });
});
