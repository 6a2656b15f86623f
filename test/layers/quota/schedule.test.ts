/**
 * The scheduled reconcile (scheduleReconcile, STOWAGE_QUOTA_RECONCILE_INTERVAL) on real
 * parts: drift made behind the quota layer's back (files written straight into the fs
 * root) is repaired by the schedule alone within a few intervals, with one log line per
 * run; two schedules sharing one Redis run lock (as two instances) never list at the
 * same time, the second logging "skipped"; stop() waits for a run in progress and leaves
 * the lock free; and the service process runs the schedule from the variable.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, describe, it } from 'node:test';
import { Redis } from 'ioredis';
import type { Driver, DriverListOptions } from '../../../src/core/contract.js';
import type { ListPage } from '../../../src/core/types.js';
import { createStorage, DriverLayer, EmbeddedQuotaStore, FileRunLock, quotaOf, withQuotas, type QuotaControl, type QuotaStore, type Storage } from '../../../src/index.js';
import { RedisRunLock } from '../../../src/layers/quota/redis-lock.js';
import { RedisQuotaStore } from '../../../src/layers/quota/redis-store.js';
import { scheduleReconcile } from '../../../src/layers/quota/schedule.js';
import { LISTENING, runServerWithin } from '../../http/helpers.js';

const RULES = { 'users/*/': { maxBytes: 1_000_000 } };
const RUN_LINE = /^(info|warn) quota reconcile in \d+\.\d s: \d+ objects, \d+ of \d+ quota folders drifted( \(repaired\))?$/;
const SKIPPED = 'info quota reconcile skipped: another instance is running it';

const cleanups: (() => Promise<unknown> | void)[] = [];
after(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup();
});

/** What the listings below a quota layer do, shared by every layer given the same watch. */
interface ListingWatch {
  calls: number;
  active: number;
  maxActive: number;
  lastStart: number;
}

/**
 * Counts the listings in progress (the reconcile's work) and makes each last `ms`, on a
 * timer deaf to aborts: a run in progress stays in progress until the timer ends.
 */
class WatchedListing extends DriverLayer {
  constructor(inner: Driver, private readonly watch: ListingWatch, private readonly ms: number) {
    super(inner);
  }

  override async list(opts: DriverListOptions): Promise<ListPage> {
    const w = this.watch;
    w.calls += 1;
    w.active += 1;
    w.maxActive = Math.max(w.maxActive, w.active);
    w.lastStart = Date.now();
    try {
      await sleep(this.ms);
      return await this.inner.list({ ...opts, signal: undefined });
    } finally {
      w.active -= 1;
    }
  }
}

const newWatch = (): ListingWatch => ({ calls: 0, active: 0, maxActive: 0, lastStart: 0 });

async function freshRoot(label: string): Promise<string> {
  const root = await mkdtemp(join(tmpdir(), `stowage-reconcile-schedule-${label}-`));
  cleanups.push(() => rm(root, { recursive: true, force: true }));
  return root;
}

/** A quota'd fs storage on `root` whose listings go through `watch`. */
function quotaStorage(root: string, store: QuotaStore, watch: ListingWatch, listMs: number): { storage: Storage; control: QuotaControl } {
  const storage = createStorage({ driver: 'fs', root, fsync: false }).withDriver((d) => withQuotas(new WatchedListing(d, watch, listMs), { rules: RULES, store, log: () => undefined }));
  cleanups.push(() => storage.close());
  return { storage, control: quotaOf(storage.driver) as QuotaControl };
}

function collect(name = ''): { lines: string[]; log: { info: (m: string) => void; warn: (m: string) => void } } {
  const lines: string[] = [];
  return { lines, log: { info: (m) => lines.push(`${name}info ${m}`), warn: (m) => lines.push(`${name}warn ${m}`) } };
}

async function until(what: string, check: () => boolean | Promise<boolean>, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

const used = async (control: QuotaControl, prefix: string) => (await control.usage(prefix)).find((q) => q.pattern === 'users/*/')?.usedBytes;

/** The shared test Redis (scripts/run-tests.mjs starts it): these tests never skip. */
function redisUrl(): string {
  const url = process.env.STOWAGE_TEST_REDIS_URL;
  if (!url) throw new Error(process.env.STOWAGE_TEST_REDIS_ERROR ?? 'no Redis for the tests: run them with scripts/run-tests.mjs, or set STOWAGE_TEST_REDIS_URL');
  return url;
}

describe('scheduleReconcile', () => {
  it('repairs drift made behind its back on its own, one interval after the start, with a line per run', async () => {
    const root = await freshRoot('drift');
    const watch = newWatch();
    const { storage, control } = quotaStorage(root, new EmbeddedQuotaStore(join(root, '.stowage', 'quota')), watch, 0);
    await storage.put('users/ann/a.bin', Buffer.alloc(100));
    // Written around Stowage: the counters cannot know.
    await writeFile(join(root, 'users', 'ann', 'behind.bin'), Buffer.alloc(400));
    await mkdir(join(root, 'users', 'bob'), { recursive: true });
    await writeFile(join(root, 'users', 'bob', 'behind.bin'), Buffer.alloc(50));
    assert.deepEqual([await used(control, 'users/ann/'), await used(control, 'users/bob/')], [100, 0]);

    const { lines, log } = collect();
    const schedule = scheduleReconcile(control, { intervalMs: 300, log });
    cleanups.push(() => schedule.stop());
    await sleep(100);
    assert.equal(watch.calls, 0, 'the first run waits one interval');
    // Nobody calls reconcile: the schedule must.
    await until('the schedule to repair both folders', async () => (await used(control, 'users/ann/')) === 500 && (await used(control, 'users/bob/')) === 50);
    assert.match(lines[0] ?? '', /^warn quota reconcile in \d+\.\d s: 3 objects, 2 of 2 quota folders drifted \(repaired\)$/, 'drift is logged at warn');
    await until('two more runs', () => lines.length >= 3);
    await schedule.stop();
    // One listing per run (one page under users/): as many lines as runs, none extra.
    assert.equal(lines.length, watch.calls, lines.join('\n'));
    assert.ok(lines.every((line) => RUN_LINE.test(line)), lines.join('\n'));
    for (const line of lines.slice(1)) assert.match(line, /^info .* 0 of 2 quota folders drifted$/, 'repaired: nothing left to drift');
  });

  it('runs one schedule at a time across two instances sharing a Redis run lock; the other logs "skipped"', async () => {
    const root = await freshRoot('two');
    const url = redisUrl();
    const namespace = `stowage-test:${randomUUID()}:`;
    const lockName = `stowage-test:lock:${randomUUID()}`;
    cleanups.push(async () => {
      const raw = new Redis(url);
      const keys = await raw.keys(`${namespace}*`);
      if (keys.length > 0) await raw.del(...keys);
      raw.disconnect();
    });
    // Two instances: a store, a lock connection and a schedule each; one watch over both listings.
    const watch = newWatch();
    const a = quotaStorage(root, new RedisQuotaStore({ url, namespace }), watch, 250);
    const b = quotaStorage(root, new RedisQuotaStore({ url, namespace }), watch, 250);
    await a.storage.put('users/ann/a.bin', 'x');
    const locks = [new RedisRunLock(url, lockName), new RedisRunLock(url, lockName)];
    cleanups.push(() => Promise.all(locks.map((l) => l.close())));
    const logA = collect('a ');
    const logB = collect('b ');
    // Ticks far shorter than a run: without the lock the two would list side by side.
    const schedules = [scheduleReconcile(a.control, { intervalMs: 40, lock: locks[0], log: logA.log }), scheduleReconcile(b.control, { intervalMs: 40, lock: locks[1], log: logB.log })];
    cleanups.push(() => Promise.all(schedules.map((s) => s.stop())));
    await sleep(1800);
    await Promise.all(schedules.map((s) => s.stop()));
    const lines = [...logA.lines, ...logB.lines].map((line) => line.slice(2));
    const runs = lines.filter((line) => RUN_LINE.test(line));
    assert.equal(watch.maxActive, 1, `two reconciles listed at once:\n${lines.join('\n')}`);
    assert.ok(runs.length >= 3, `runs went on:\n${lines.join('\n')}`);
    assert.equal(runs.length, watch.calls, 'each listing is a run that logged its line');
    assert.ok(lines.some((line) => line === SKIPPED), `the other instance found the lock held:\n${lines.join('\n')}`);
    assert.ok(lines.every((line) => RUN_LINE.test(line) || line === SKIPPED), lines.join('\n'));
  });

  it('stop() waits for the run in progress and leaves the lock free', async () => {
    const root = await freshRoot('stop');
    const watch = newWatch();
    const { storage, control } = quotaStorage(root, new EmbeddedQuotaStore(join(root, '.stowage', 'quota')), watch, 700);
    await storage.put('users/ann/a.bin', 'x');
    const lockPath = join(root, '.stowage', 'quota-reconcile.lock');
    const { lines, log } = collect();
    const schedule = scheduleReconcile(control, { intervalMs: 50, lock: new FileRunLock(lockPath), log });
    cleanups.push(() => schedule.stop());
    await until('a run to start listing', () => watch.active === 1);
    assert.equal(await new FileRunLock(lockPath).tryAcquire(1000), undefined, 'the run holds the lock');
    await schedule.stop();
    assert.equal(watch.active, 0, 'stop() resolved while the run was still listing');
    assert.ok(Date.now() >= watch.lastStart + 690, 'it waited out the listing');
    assert.equal(lines.length, 1, lines.join('\n'));
    assert.match(lines[0] ?? '', /^(info|warn) quota reconcile (in|failed)/, 'the run ended and said so');
    const free = await new FileRunLock(lockPath).tryAcquire(1000);
    assert.ok(free, 'the run released the lock before stop() resolved');
    await free.release();
    const calls = watch.calls;
    await sleep(200);
    assert.equal(watch.calls, calls, 'no run after stop()');
  });
});

describe('service: STOWAGE_QUOTA_RECONCILE_INTERVAL', () => {
  it('repairs drift on its schedule without anyone running a reconcile', async () => {
    const root = await freshRoot('service');
    const env = { PORT: '0', STOWAGE_ACCESS_LOG: 'false', STORAGE_LOCAL_PATH: root, STOWAGE_QUOTAS: JSON.stringify(RULES), STOWAGE_QUOTA_RECONCILE_INTERVAL: '0.5s' };
    const server = await runServerWithin(env, LISTENING);
    cleanups.push(() => void (server.child.exitCode === null && server.child.kill('SIGKILL')));
    let output = server.output;
    server.child.stdout?.on('data', (d: Buffer) => (output += d.toString()));
    const base = LISTENING.exec(output)?.[1] as string;
    assert.ok(base, output);
    const usage = async () => ((await (await fetch(`${base}/api/usage?prefix=users/ann/`)).json()) as { quotas: { usedBytes: number }[] }).quotas[0]?.usedBytes;
    assert.equal((await fetch(`${base}/api/objects/users/ann/a.bin`, { method: 'PUT', body: Buffer.alloc(100) })).status, 201);
    await writeFile(join(root, 'users', 'ann', 'behind.bin'), Buffer.alloc(400));
    await until('the service to count the file written behind its back', async () => (await usage()) === 500);
    const messages = () => output.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as { level: number; msg: string }).filter((m) => m.msg.startsWith('quota reconcile'));
    await until('a run after the repair', () => messages().length >= 2);
    const [first, second] = messages() as [{ level: number; msg: string }, { level: number; msg: string }];
    assert.match(first.msg, /^quota reconcile in \d+\.\d s: 2 objects, 1 of 1 quota folders drifted \(repaired\)$/);
    assert.equal(first.level, 40, 'drift is a warning');
    assert.match(second.msg, /^quota reconcile in \d+\.\d s: 2 objects, 0 of 1 quota folders drifted$/);
    const exited = new Promise<number | null>((resolve) => server.child.once('exit', resolve));
    server.child.kill('SIGTERM');
    assert.equal(await exited, 0, output);
  });
});
