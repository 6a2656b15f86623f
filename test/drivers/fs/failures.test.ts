/**
 * A write that fails at any step leaves the previous version exactly as it was, and a
 * write that reports success is stored with its metadata. Steps are made to fail for
 * real: a folder made read-only (the operation runs in a child process that drops root
 * first, since root ignores permissions) fails the sidecar rename, the data rename, or
 * a move's clean-up.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmod, readdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { createStorage } from '../../../src/index.js';
import { rejectsWith } from '../../conformance/harness.js';
import { runChild, tempRoot } from './helpers.js';

const cleanups: (() => Promise<unknown>)[] = [];
after(async () => {
  for (const clean of cleanups.reverse()) await clean();
});

const OLD = { bytes: 'version 1', contentType: 'text/x-old', version: 'old' };

/** A root holding docs/a.txt (version 1) and other/keep.txt, writable by the child, and a file to putFile. */
async function prepared(label: string): Promise<{ dir: string; upload: string }> {
  const dir = await tempRoot(label);
  const outside = await tempRoot(`${label}-upload`);
  cleanups.push(() => rm(dir, { recursive: true, force: true }), () => rm(outside, { recursive: true, force: true }));
  const storage = createStorage({ driver: 'fs', root: dir });
  await storage.put('docs/a.txt', OLD.bytes, { contentType: OLD.contentType, metadata: { version: OLD.version } });
  await storage.put('other/keep.txt', 'kept', { contentType: 'text/x-kept', metadata: { version: 'kept' } });
  await storage.put('src.txt', 'the copy source', { contentType: 'text/x-src', metadata: { version: 'src' } });
  const upload = join(outside, 'upload.txt');
  await writeFile(upload, 'from a file');
  for (const d of [dir, outside]) await chmod(d, 0o755);
  if (process.getuid?.() === 0) execFileSync('chown', ['-R', '65534:65534', dir]);
  return { dir, upload };
}

async function readOnly(path: string): Promise<void> {
  await chmod(path, 0o555);
  cleanups.push(() => chmod(path, 0o755).catch(() => undefined));
}

async function op(...args: string[]): Promise<string> {
  const [result] = await runChild(args, 'as-nobody.ts');
  return String(result?.code);
}

/** The key holds exactly these bytes, with their digest, type and metadata (read by a fresh storage, no cache). */
async function assertVersion(dir: string, key: string, want: { bytes: string; contentType: string; version: string }): Promise<void> {
  const storage = createStorage({ driver: 'fs', root: dir, cacheBytes: 0 });
  const [bytes, info] = await Promise.all([storage.get(key), storage.stat(key)]);
  assert.equal(bytes.toString(), want.bytes, `${key}: bytes`);
  assert.equal(info.sha256, createHash('sha256').update(want.bytes).digest('hex'), `${key}: digest`);
  assert.deepEqual([info.contentType, info.metadata.version], [want.contentType, want.version], `${key}: metadata`);
}

async function assertNoTemps(dir: string): Promise<void> {
  const tmp = join(dir, '.stowage', 'tmp');
  for (const sub of await readdir(tmp)) assert.deepEqual(await readdir(join(tmp, sub)), [], 'no temp file is left');
}

describe('fs driver: a failing write leaves the previous version exactly as it was', () => {
  it('put, putFile and copy failing at the sidecar rename store nothing', async () => {
    const { dir, upload } = await prepared('fail-sidecar');
    await readOnly(join(dir, '.stowage', 'meta', 'docs'));
    assert.equal(await op('put', dir, 'docs/a.txt', 'version 2'), 'E_ACCESS_DENIED');
    assert.equal(await op('putFile', dir, 'docs/a.txt', upload), 'E_ACCESS_DENIED');
    assert.equal(await op('copy', dir, 'src.txt', 'docs/a.txt'), 'E_ACCESS_DENIED');
    await assertVersion(dir, 'docs/a.txt', OLD);
    await assertNoTemps(dir);
  });

  it('put, putFile and copy failing at the data rename (after the sidecar rename) store nothing', async () => {
    const { dir, upload } = await prepared('fail-data');
    await readOnly(join(dir, 'docs'));
    assert.equal(await op('put', dir, 'docs/a.txt', 'version 2'), 'E_ACCESS_DENIED');
    assert.equal(await op('putFile', dir, 'docs/a.txt', upload), 'E_ACCESS_DENIED');
    assert.equal(await op('copy', dir, 'src.txt', 'docs/a.txt'), 'E_ACCESS_DENIED');
    await assertVersion(dir, 'docs/a.txt', OLD);
    await assertNoTemps(dir);
  });

  it('a move failing before its data rename leaves both keys as they were', async () => {
    const { dir } = await prepared('fail-move');
    await readOnly(join(dir, '.stowage', 'meta', 'other'));
    assert.equal(await op('move', dir, 'docs/a.txt', 'other/b.txt'), 'E_ACCESS_DENIED');
    await assertVersion(dir, 'docs/a.txt', OLD);
    await rejectsWith(createStorage({ driver: 'fs', root: dir }).stat('other/b.txt'), 'E_NOT_FOUND');

    await chmod(join(dir, '.stowage', 'meta', 'other'), 0o755);
    await readOnly(join(dir, 'other'));
    assert.equal(await op('move', dir, 'docs/a.txt', 'other/keep.txt'), 'E_ACCESS_DENIED');
    await assertVersion(dir, 'docs/a.txt', OLD);
    await assertVersion(dir, 'other/keep.txt', { bytes: 'kept', contentType: 'text/x-kept', version: 'kept' });
  });

  it('a move whose clean-up fails after the data rename reports success, with the metadata moved', async () => {
    const { dir } = await prepared('fail-move-cleanup');
    await readOnly(join(dir, '.stowage', 'meta', 'docs'));
    assert.equal(await op('move', dir, 'docs/a.txt', 'other/b.txt'), 'ok');
    await assertVersion(dir, 'other/b.txt', OLD);
    await rejectsWith(createStorage({ driver: 'fs', root: dir }).stat('docs/a.txt'), 'E_NOT_FOUND');
    assert.deepEqual((await createStorage({ driver: 'fs', root: dir }).list()).objects.map((o) => o.key), ['other/b.txt', 'other/keep.txt', 'src.txt']);
  });
});
