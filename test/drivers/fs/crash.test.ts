/**
 * Crash safety of the fs driver with real processes: a writer killed with SIGKILL
 * mid-upload leaves the previous version intact and no visible temp file, the next
 * process to write removes its temp files, and writers in several processes never pair one
 * writer's bytes with another's metadata.
 */
import assert from 'node:assert/strict';
import { readdir, mkdir, writeFile, utimes } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { createHash } from 'node:crypto';
import { createStorage } from '../../../src/index.js';
import { runChild, startChild, suiteRoots } from './helpers.js';

const root = suiteRoots();

describe('fs driver: crashes and other processes', () => {
  it('keeps the previous version when a writer is killed mid-upload, and cleans up at the next write', async () => {
    const dir = await root('crash');
    const storage = createStorage({ driver: 'fs', root: dir });
    await storage.put('docs/report.pdf', 'version 1');

    const { child, lines } = startChild(['slow-write', dir, 'docs/report.pdf']);
    const first = await lines.next();
    assert.deepEqual(first.value, { writing: true });
    const tmpParent = join(dir, '.stowage', 'tmp');
    const childTmp = join(tmpParent, `${hostname()}-${child.pid}`);
    assert.ok((await readdir(childTmp)).length > 0, 'the child has a temp file in flight');
    child.kill('SIGKILL');
    await new Promise((resolve) => child.once('exit', resolve));

    assert.equal((await storage.get('docs/report.pdf')).toString(), 'version 1');
    assert.deepEqual((await storage.list()).objects.map((o) => o.key), ['docs/report.pdf']);
    assert.ok((await readdir(childTmp)).length > 0, 'the dead writer left its temp file behind');

    const restarted = createStorage({ driver: 'fs', root: dir });
    assert.equal((await restarted.health()).ok, true);
    assert.equal((await restarted.get('docs/report.pdf')).toString(), 'version 1');
    assert.ok((await readdir(tmpParent)).includes(`${hostname()}-${child.pid}`), 'reads change nothing');
    await restarted.put('docs/other.txt', 'x');
    assert.ok(!(await readdir(tmpParent)).includes(`${hostname()}-${child.pid}`), 'stale temps are removed by the first write');
  });

  it('removes temp folders of dead processes and old ones of other hosts, keeping live ones', async () => {
    const dir = await root('stale');
    const tmpParent = join(dir, '.stowage', 'tmp');
    const deadLocal = join(tmpParent, `${hostname()}-2147483646`);
    const oldForeign = join(tmpParent, 'other-host-123');
    const freshForeign = join(tmpParent, 'another-host-456');
    for (const d of [deadLocal, oldForeign, freshForeign]) {
      await mkdir(d, { recursive: true });
      await writeFile(join(d, 'partial'), 'x');
    }
    const twoDaysAgo = new Date(Date.now() - 48 * 3600 * 1000);
    await utimes(oldForeign, twoDaysAgo, twoDaysAgo);
    await createStorage({ driver: 'fs', root: dir }).put('first-write', 'x');
    const left = await readdir(tmpParent);
    assert.ok(!left.includes(`${hostname()}-2147483646`));
    assert.ok(!left.includes('other-host-123'));
    assert.ok(left.includes('another-host-456'));
    assert.ok(left.includes(`${hostname()}-${process.pid}`));
  });

  it('keeps bytes and metadata paired when four processes overwrite one key', async () => {
    const dir = await root('multiproc');
    const results = await Promise.all([0, 1, 2, 3].map((id) => runChild(['overwrite', dir, 'shared/key.bin', '15', String(id)])));
    assert.ok(results.every((lines) => lines.some((l) => l.done === true)), 'every child finished');
    const storage = createStorage({ driver: 'fs', root: dir });
    const data = await storage.get('shared/key.bin');
    const info = await storage.stat('shared/key.bin');
    assert.equal(info.size, data.length);
    assert.equal(info.sha256, createHash('sha256').update(data).digest('hex'));
    assert.match(info.metadata.writer ?? '', /^[0-3]-\d+$/);
    assert.deepEqual(await readdir(join(dir, '.stowage', 'locks')), [], 'no lock file is left behind');
  });
});
