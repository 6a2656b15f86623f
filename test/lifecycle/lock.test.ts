/**
 * FileRunLock on the real filesystem: one holder at a time, renewals that keep the lease,
 * a lapsed lease taken over (and the old holder told so), a lock left by a killed
 * process taken over only after its lease, and many racing for a lapsed lease.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, describe, it } from 'node:test';
import { FileRunLock } from '../../src/index.js';

const CHILD = new URL('./child.ts', import.meta.url).pathname;
const dirs: string[] = [];
after(async () => Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true }))));

async function lockFile(label: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), `stowage-runlock-${label}-`));
  dirs.push(dir);
  return join(dir, 'nested', 'lifecycle.lock');
}

describe('FileRunLock', () => {
  it('has one holder at a time; releasing lets the next one in', async () => {
    const path = await lockFile('one');
    const a = new FileRunLock(path);
    const b = new FileRunLock(path);
    const held = await a.tryAcquire(10_000);
    assert.ok(held, 'the first one holds it (its folder created)');
    assert.equal(await b.tryAcquire(10_000), undefined);
    assert.equal(await a.tryAcquire(10_000), undefined, 'not re-entrant: a second run in this process waits too');
    assert.equal((await a.holder())?.pid, process.pid);
    await held.release();
    assert.equal(await a.holder(), undefined);
    const next = await b.tryAcquire(10_000);
    assert.ok(next);
    await next.release();
  });

  it('keeps a renewed lease; takes over a lapsed one, whose holder then learns it lost it', async () => {
    const path = await lockFile('renew');
    const lock = new FileRunLock(path);
    const first = await lock.tryAcquire(300);
    assert.ok(first);
    for (let i = 0; i < 6; i++) {
      await sleep(100);
      assert.equal(await first.renew(), true);
      assert.equal(await lock.tryAcquire(300), undefined, 'renewed: still held');
    }
    await sleep(400);
    const second = await lock.tryAcquire(10_000);
    assert.ok(second, 'lapsed: taken over');
    assert.equal(await first.renew(), false, 'the old holder lost it');
    await first.release();
    assert.equal(await lock.tryAcquire(10_000), undefined, "the old holder's release leaves the new lease alone");
    await second.release();
  });

  it('takes over the lock of a killed process once its lease lapses, not before', async () => {
    const path = await lockFile('killed');
    const child = spawn(process.execPath, ['--import', 'tsx', CHILD, 'hold', path, '1500'], { stdio: ['ignore', 'pipe', 'inherit'] });
    const [first] = (await once(createInterface({ input: child.stdout }), 'line')) as [string];
    assert.equal(first, 'held');
    const killed = Date.now();
    child.kill('SIGKILL');
    await once(child, 'exit');
    const lock = new FileRunLock(path);
    assert.equal(await lock.tryAcquire(10_000), undefined, 'its lease still runs');
    let lease;
    while (!(lease = await lock.tryAcquire(10_000))) await sleep(50);
    assert.ok(Date.now() - killed >= 1400, `taken over ${Date.now() - killed} ms after the kill`);
    assert.equal((await lock.holder())?.pid, process.pid);
    await lease.release();
  });

  it('gives a lapsed lease, or a file that is no holder, to exactly one of many racing for it', async () => {
    const path = await lockFile('race');
    const stale = await new FileRunLock(path).tryAcquire(1);
    assert.ok(stale);
    await sleep(20);
    for (const round of ['lapsed', 'garbage']) {
      if (round === 'garbage') await writeFile(path, 'not a holder');
      const leases = await Promise.all(Array.from({ length: 12 }, () => new FileRunLock(path).tryAcquire(10_000)));
      assert.equal(leases.filter(Boolean).length, 1, round);
      await leases.find(Boolean)?.release();
    }
  });
});
