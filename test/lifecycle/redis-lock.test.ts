/**
 * The lifecycle lock through Redis: when the quotas use Redis (STOWAGE_QUOTA_REDIS_URL),
 * lifecycleLock() is a RedisRunLock keyed by the storage and the run's name (so instances
 * on any machine take turns, and the lifecycle and the quota reconcile do not wait for each
 * other); and two real service processes on one fs root and one redis-server of this
 * test's own, running STOWAGE_LIFECYCLE every 0.2 s, never run a pass at the same time:
 * their log lines show disjoint runs and "skipped" ones, the lock is a Redis key and no
 * lock file is made. (The lock file's case is schedule.test.ts's.)
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, describe, it } from 'node:test';
import { Redis } from 'ioredis';
import { privateRedisServer } from '../../scripts/redis-server.mjs';
import { FileRunLock, parseStorageEnv } from '../../src/index.js';
import { RedisRunLock } from '../../src/layers/quota/redis-lock.js';
import { lifecycleLock } from '../../src/lifecycle/env.js';
import { LISTENING, runServerWithin } from '../http/helpers.js';

const QUOTAS = JSON.stringify({ 'users/*/': { maxBytes: 1_000_000 } });
const SKIPPED = 'lifecycle run skipped: another instance holds the lifecycle lock';
/** A dry run over the old files: the same 2000 objects every time, so every run lasts a while. */
const RUN = /^lifecycle dry run \(nothing removed\) in (\d+) ms: rule 0 "temp\/": expire 2000 \(2000 bytes\)$/;

const cleanups: (() => Promise<unknown> | void)[] = [];
after(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup();
});

async function freshRoot(label: string): Promise<string> {
  const root = await mkdtemp(join(tmpdir(), `stowage-lifecycle-redis-${label}-`));
  cleanups.push(() => rm(root, { recursive: true, force: true }));
  return root;
}

describe('lifecycleLock with the quotas in Redis', () => {
  it('is a RedisRunLock per storage and run name, exclusive across instances', async () => {
    const redis = privateRedisServer();
    cleanups.push(() => redis.stop());
    const [root, other] = [await freshRoot('unit'), await freshRoot('unit-other')];
    const env = (path: string) => ({ STORAGE_LOCAL_PATH: path, STOWAGE_QUOTAS: QUOTAS, STOWAGE_QUOTA_REDIS_URL: redis.url });
    const lockOf = (path: string, name?: string) => lifecycleLock(env(path), parseStorageEnv(env(path)), name) as RedisRunLock;
    // Two instances on one storage, its quota reconcile, and a service on another storage.
    const [one, two, reconcile, elsewhere] = [lockOf(root), lockOf(root), lockOf(root, 'quota-reconcile'), lockOf(other)];
    cleanups.push(() => Promise.all([one, two, reconcile, elsewhere].map((l) => l.close())));
    for (const lock of [one, two, reconcile, elsewhere]) assert.ok(lock instanceof RedisRunLock, 'Redis, not a lock file');

    const held = await one.tryAcquire(5000);
    assert.ok(held);
    assert.equal(await two.tryAcquire(5000), undefined, 'the other instance of the same storage waits');
    const raw = new Redis(redis.url);
    cleanups.push(() => raw.disconnect());
    const keys = await raw.keys('stowage:lock:lifecycle:*');
    assert.equal(keys.length, 1, 'one key in Redis holds it');
    assert.ok((await raw.pttl(keys[0] as string)) > 0, 'with a ttl, so a dead holder lets go');
    const [r, e] = [await reconcile.tryAcquire(5000), await elsewhere.tryAcquire(5000)];
    assert.ok(r && e, 'another run name, or another storage, is another lock');
    await Promise.all([held.release(), r.release(), e.release()]);
    const next = await two.tryAcquire(5000);
    assert.ok(next, 'free once released');
    await next.release();
    assert.equal(existsSync(join(root, '.stowage', 'lifecycle.lock')), false, 'no lock file');

    // Without Redis the same storage locks with a file beside its objects.
    const local = lifecycleLock({ STORAGE_LOCAL_PATH: root }, parseStorageEnv({ STORAGE_LOCAL_PATH: root }));
    assert.ok(local instanceof FileRunLock);
    assert.equal(local.path, join(root, '.stowage', 'lifecycle.lock'));
  });

  it('keeps two service processes on one root to one lifecycle pass at a time', async () => {
    const redis = privateRedisServer();
    cleanups.push(() => redis.stop());
    const root = await freshRoot('service');
    // 2000 old files, written straight to the root (the fastest way to make them).
    await mkdir(join(root, 'temp'), { recursive: true });
    const old = new Date(Date.now() - 2 * 3_600_000);
    for (let i = 0; i < 2000; i += 200) {
      await Promise.all(Array.from({ length: 200 }, async (_, j) => {
        const path = join(root, 'temp', `f${i + j}`);
        await writeFile(path, 'x');
        await utimes(path, old, old);
      }));
    }
    const env = { PORT: '0', STOWAGE_ACCESS_LOG: 'false', STORAGE_LOCAL_PATH: root, STOWAGE_QUOTAS: QUOTAS, STOWAGE_QUOTA_REDIS_URL: redis.url, STOWAGE_LIFECYCLE: JSON.stringify([{ prefix: 'temp/', expireAfter: '1h' }]), STOWAGE_LIFECYCLE_DRY_RUN: 'true', STOWAGE_LIFECYCLE_INTERVAL: '0.2s' };
    const servers = await Promise.all([runServerWithin(env, LISTENING), runServerWithin(env, LISTENING)]);
    const outputs = servers.map((server, i) => {
      cleanups.push(() => void (server.child.exitCode === null && server.child.kill('SIGKILL')));
      const out = { text: server.output };
      server.child.stdout?.on('data', (d: Buffer) => (out.text += d.toString()));
      assert.ok(LISTENING.test(server.output), `server ${i}: ${server.output}`);
      return out;
    });

    // While they run: the lock is a Redis key, never the lock file of the local root.
    const raw = new Redis(redis.url);
    cleanups.push(() => raw.disconnect());
    let sawKey = false;
    let sawFile = false;
    for (const stop = Date.now() + 3000; Date.now() < stop; await sleep(20)) {
      sawKey ||= (await raw.keys('stowage:lock:lifecycle:*')).length > 0;
      sawFile ||= existsSync(join(root, '.stowage', 'lifecycle.lock'));
    }
    const metrics = await Promise.all(servers.map(async (server) => (await fetch(`${LISTENING.exec(server.output)?.[1] as string}/metrics`)).text()));
    await Promise.all(
      servers.map(async (server) => {
        const exited = new Promise<number | null>((resolve) => server.child.once('exit', resolve));
        server.child.kill('SIGTERM');
        assert.equal(await exited, 0);
      }),
    );

    const lines = outputs.flatMap((out, server) =>
      out.text
        .split('\n')
        .filter((l) => l.startsWith('{'))
        .map((l) => ({ server, ...(JSON.parse(l) as { time: number; msg: string }) })),
    );
    const runs = lines
      .map((line) => ({ line, ms: RUN.exec(line.msg) }))
      .filter((r) => r.ms)
      .map(({ line, ms }) => ({ server: line.server, start: line.time - Number(ms?.[1]), end: line.time }))
      .sort((x, y) => x.start - y.start);
    const skipped = lines.filter((line) => line.msg === SKIPPED);
    const report = lines.filter((l) => l.msg.startsWith('lifecycle')).map((l) => `${l.server} ${l.time} ${l.msg}`).join('\n');
    assert.ok(sawKey, 'the lock was seen in Redis');
    assert.equal(sawFile, false, 'no lock file: the lock is in Redis');
    assert.ok(runs.length >= 4, `runs went on:\n${report}`);
    assert.ok(skipped.length > 0, `an instance found the lock held:\n${report}`);
    for (let i = 1; i < runs.length; i++) {
      const [prev, next] = [runs[i - 1], runs[i]] as [(typeof runs)[0], (typeof runs)[0]];
      // Each span is measured inside the lock; a few ms of slack for writing the log line.
      assert.ok(next.start >= prev.end - 5, `a run of server ${next.server} at ${next.start} overlaps one of server ${prev.server} ending ${prev.end}:\n${report}`);
    }
    // /metrics counts the skips as runs found locked.
    const locked = metrics.map((text) => Number(/stowage_lifecycle_runs_total\{outcome="locked",dry_run="true"\} (\d+)/.exec(text)?.[1] ?? 0));
    assert.ok(locked.some((n) => n > 0), metrics.join('\n'));
  });
});
