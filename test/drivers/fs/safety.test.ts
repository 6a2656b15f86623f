/**
 * The fs driver's boundaries: symlinks never lead reads, writes or deletes out of the
 * root, files written by other tools are served honestly, and disk-full and permission
 * errors map to clear codes without leaving temp files.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { chmod, mkdir, readdir, readFile, rm, stat, symlink, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { createStorage, type Storage } from '../../../src/index.js';
import { rejectsWith } from '../../conformance/harness.js';
import { runChild, tempRoot } from './helpers.js';

const cleanups: (() => Promise<unknown>)[] = [];
after(async () => {
  for (const clean of cleanups.reverse()) await clean();
});

async function fresh(label: string): Promise<{ dir: string; storage: Storage }> {
  const dir = await tempRoot(label);
  cleanups.push(() => rm(dir, { recursive: true, force: true }));
  return { dir, storage: createStorage({ driver: 'fs', root: dir }) };
}

async function tempFiles(dir: string): Promise<string[]> {
  const tmp = join(dir, '.stowage', 'tmp');
  const out: string[] = [];
  for (const sub of await readdir(tmp)) out.push(...(await readdir(join(tmp, sub))));
  return out;
}

describe('fs driver: symlinks and the root boundary', () => {
  for (const followSymlinks of [false, true]) {
    it(`does not read, list, write or delete through a symlink that leads out of the root (followSymlinks: ${followSymlinks})`, async () => {
      const { dir } = await fresh('symlink');
      const storage = createStorage({ driver: 'fs', root: dir, followSymlinks });
      const outside = await tempRoot('outside');
      cleanups.push(() => rm(outside, { recursive: true, force: true }));
      await writeFile(join(outside, 'secret.txt'), 'top secret');
      await symlink(outside, join(dir, 'escape'));
      await symlink(join(outside, 'secret.txt'), join(dir, 'secret-link'));

      await rejectsWith(storage.get('escape/secret.txt'), 'E_NOT_FOUND');
      await rejectsWith(storage.get('secret-link'), 'E_NOT_FOUND');
      assert.deepEqual((await storage.list()).objects, []);
      await rejectsWith(storage.put('escape/planted.txt', 'x'), 'E_ACCESS_DENIED', 'symlink');
      await storage.delete('escape/secret.txt');
      await rejectsWith(storage.copy('secret-link', 'copied'), 'E_NOT_FOUND');
      assert.deepEqual((await readdir(outside)).sort(), ['secret.txt']);
      assert.equal(await readFile(join(outside, 'secret.txt'), 'utf8'), 'top secret');
    });
  }

  it('follows a symlink that stays inside the root when told to', async () => {
    const { dir } = await fresh('inner-link');
    const storage = createStorage({ driver: 'fs', root: dir, followSymlinks: true });
    await storage.put('real/file.txt', 'inside');
    await symlink(join(dir, 'real', 'file.txt'), join(dir, 'alias.txt'));
    assert.equal((await storage.get('alias.txt')).toString(), 'inside');
    assert.deepEqual((await storage.list()).objects.map((o) => o.key), ['alias.txt', 'real/file.txt']);
  });

  it('reserves the .stowage folder and never lists it', async () => {
    const { storage } = await fresh('reserved');
    await rejectsWith(storage.put('.stowage/meta/x', 'x'), 'E_INVALID_KEY', 'reserved');
    await rejectsWith(storage.get('.stowage/tmp'), 'E_INVALID_KEY', 'reserved');
    await storage.put('.stowagex/ok', 'a key that merely starts alike');
    assert.deepEqual((await storage.list()).objects.map((o) => o.key), ['.stowagex/ok']);
  });

  it('keeps object files at their key paths, sidecars out of the listing, and no empty folders', async () => {
    const { dir, storage } = await fresh('layout');
    await storage.put('a/b/c.txt', 'hello');
    assert.equal(await readFile(join(dir, 'a', 'b', 'c.txt'), 'utf8'), 'hello');
    await storage.delete('a/b/c.txt');
    assert.deepEqual((await readdir(dir)).sort(), ['.stowage']);
    assert.deepEqual(await readdir(join(dir, '.stowage', 'meta')), []);
  });
});

describe('fs driver: keys that were folders, and folders that were keys', () => {
  it('refuses a key that is a folder of objects without touching their metadata', async () => {
    const { storage } = await fresh('folder-key');
    await storage.put('j/x', 'inside', { metadata: { kept: 'yes' } });
    await rejectsWith(storage.put('j', 'would shadow j/x'), 'E_ALREADY_EXISTS', 'folder');
    await rejectsWith(storage.put('j/x/y', 'under an object'), 'E_ALREADY_EXISTS', '"j/x" is an object');
    const info = await storage.stat('j/x');
    assert.deepEqual([info.metadata.kept, info.sha256 !== undefined], ['yes', true]);
  });

  it('stores a key where stale sidecars of removed keys stand, in either direction', async () => {
    const { dir, storage } = await fresh('stale-meta');
    // Sidecars left behind by keys whose files another program removed.
    await storage.put('k/x', 'gone');
    await rm(join(dir, 'k'), { recursive: true });
    await storage.put('k', 'now an object', { metadata: { v: '1' } });
    assert.equal((await storage.stat('k')).metadata.v, '1');
    await rm(join(dir, 'k'));
    await storage.put('k/y', 'a folder again', { metadata: { v: '2' } });
    assert.equal((await storage.stat('k/y')).metadata.v, '2');
    assert.deepEqual((await storage.list()).objects.map((o) => o.key), ['k/y']);
  });
});

describe('fs driver: files from other tools', () => {
  it('serves a file dropped into the root without a sidecar', async () => {
    const { dir, storage } = await fresh('foreign');
    await mkdir(join(dir, 'imported'));
    await writeFile(join(dir, 'imported', 'photo.png'), 'not really a png');
    const info = await storage.stat('imported/photo.png');
    assert.equal(info.size, 16);
    assert.equal(info.sha256, undefined);
    assert.equal(info.contentType, 'image/png');
    assert.ok(info.etag.length > 0);
    assert.equal((await storage.get('imported/photo.png')).toString(), 'not really a png');
    assert.deepEqual((await storage.list()).objects.map((o) => o.key), ['imported/photo.png']);
    const copy = await storage.copy('imported/photo.png', 'copied.png');
    assert.equal(copy.sha256, undefined);
  });

  it('never reports the old checksum for a file edited by hand', async () => {
    const { dir, storage } = await fresh('edited');
    const original = await storage.put('doc.txt', 'AAAA', { contentType: 'text/markdown' });
    await writeFile(join(dir, 'doc.txt'), 'BBBB'); // same size, new bytes
    const later = new Date(Date.now() + 5000);
    await utimes(join(dir, 'doc.txt'), later, later);
    const info = await storage.stat('doc.txt');
    assert.equal(info.sha256, undefined, 'the stale sidecar is not trusted');
    assert.notEqual(info.etag, original.etag);
    assert.equal((await storage.get('doc.txt')).toString(), 'BBBB');
  });

  it('skips names no key can address', async () => {
    const { dir, storage } = await fresh('odd-names');
    await writeFile(join(dir, 'back\\slash'), 'x');
    await writeFile(join(dir, 'line\nbreak'), 'x');
    await writeFile(join(dir, 'fine.txt'), 'x');
    assert.deepEqual((await storage.list()).objects.map((o) => o.key), ['fine.txt']);
  });
});

const isRoot = process.getuid?.() === 0;

describe('fs driver: disk full and permissions', () => {
  it('maps a full disk to E_QUOTA_EXCEEDED, keeps the old version and removes the temp file', { skip: isRoot ? false : 'mounting a small tmpfs needs root' }, async () => {
    const dir = await tempRoot('diskfull');
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=2m', 'tmpfs', dir]);
    cleanups.push(async () => {
      execFileSync('umount', [dir]);
      await rm(dir, { recursive: true, force: true });
    });
    const storage = createStorage({ driver: 'fs', root: dir });
    await storage.put('photo.jpg', 'previous');
    const err = await rejectsWith(storage.put('photo.jpg', Buffer.alloc(4 * 1024 * 1024, 1)), 'E_QUOTA_EXCEEDED', 'no space left');
    assert.equal(err.key, 'photo.jpg');
    assert.ok(!err.publicMessage.includes(dir));
    assert.equal((await storage.get('photo.jpg')).toString(), 'previous');
    assert.deepEqual(await tempFiles(dir), []);
    assert.deepEqual((await storage.list()).objects.map((o) => o.key), ['photo.jpg']);
  });

  it('maps a permission error to E_ACCESS_DENIED', async () => {
    const { dir, storage } = await fresh('perm');
    await storage.put('existing', 'x');
    if (isRoot) {
      // root ignores file modes, so the write is attempted by an unprivileged child process.
      await chmod(dir, 0o755);
      const [result] = await runChild(['put-as-nobody', dir, 'new.txt']);
      assert.equal(result?.code, 'E_ACCESS_DENIED', JSON.stringify(result));
    } else {
      await chmod(join(dir, '.stowage', 'tmp'), 0o500);
      cleanups.push(() => chmod(join(dir, '.stowage', 'tmp'), 0o700));
      await rejectsWith(createStorage({ driver: 'fs', root: dir }).put('new.txt', 'x'), 'E_ACCESS_DENIED');
    }
    assert.equal((await stat(join(dir, 'existing'))).size, 1);
    assert.equal(await storage.exists('new.txt'), false);
  });

  it('refuses a root that is a file', async () => {
    const dir = await tempRoot('notdir');
    cleanups.push(() => rm(dir, { recursive: true, force: true }));
    await writeFile(join(dir, 'file'), 'x');
    const storage = createStorage({ driver: 'fs', root: join(dir, 'file') });
    await rejectsWith(storage.put('k', 'v'), 'E_CONFIG_INVALID', 'not a directory');
    const health = await storage.health();
    assert.equal(health.ok, false);
    assert.equal(health.detail.code, 'E_CONFIG_INVALID');
  });
});
