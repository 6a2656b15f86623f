/**
 * startLifecycle: two schedulers in two processes on one lock file never run at once;
 * runs are logged one line each and counted in a Prometheus registry (removals only when
 * not a dry run); a run whose lease is lost is cancelled; stop() waits for the run.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtemp, rm, utimes } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Registry } from 'prom-client';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, describe, it } from 'node:test';
import { createStorage, FileRunLock, startLifecycle, withFaults, type Storage } from '../../src/index.js';

const CHILD = new URL('./child.ts', import.meta.url).pathname;
const dirs: string[] = [];
after(async () => Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true }))));

async function fresh(label: string): Promise<{ dir: string; root: string; storage: Storage }> {
  const dir = await mkdtemp(join(tmpdir(), `stowage-schedule-${label}-`));
  dirs.push(dir);
  const root = join(dir, 'store');
  return { dir, root, storage: createStorage({ driver: 'fs', root, fsync: false }) };
}

async function putOld(storage: Storage, root: string, key: string, body: string): Promise<void> {
  await storage.put(key, body);
  const when = new Date(Date.now() - 2 * 3_600_000);
  await utimes(join(root, key), when, when);
}

interface Line {
  pid: number;
  at: number;
  level: string;
  message: string;
}

function scheduleChild(root: string, lock: string, forMs: number): Promise<Line[]> {
  const child = spawn(process.execPath, ['--import', 'tsx', CHILD, 'schedule', root, lock, String(forMs)], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  return new Promise((resolve, reject) => child.once('exit', (code) => (code === 0 ? resolve(out.trim().split('\n').filter(Boolean).map((l) => JSON.parse(l) as Line)) : reject(new Error(`child exited ${code}: ${out}`)))));
}

function collect(): { lines: string[]; log: { info: (m: string) => void; warn: (m: string) => void } } {
  const lines: string[] = [];
  return { lines, log: { info: (m) => lines.push(`info ${m}`), warn: (m) => lines.push(`warn ${m}`) } };
}

describe('startLifecycle', () => {
  it('runs one scheduler at a time across two processes sharing a lock file', async () => {
    const { dir, root, storage } = await fresh('two');
    await putOld(storage, root, 'temp/a', 'x');
    const lock = join(dir, 'lifecycle.lock');
    const [a, b] = await Promise.all([scheduleChild(root, lock, 4000), scheduleChild(root, lock, 4000)]);
    const runs = [...a, ...b]
      .map((line) => ({ line, ms: /^lifecycle dry run \(nothing removed\) in (\d+) ms: rule 0 "temp\/": expire 1 \(1 bytes\)$/.exec(line.message) }))
      .filter((r) => r.ms)
      .map(({ line, ms }) => ({ pid: line.pid, start: line.at - Number(ms?.[1]), end: line.at }))
      .sort((x, y) => x.start - y.start);
    const skipped = [...a, ...b].filter((line) => line.message === 'lifecycle run skipped: another instance holds the lifecycle lock');
    assert.ok(runs.length >= 4, `runs: ${JSON.stringify(runs)}`);
    assert.ok(skipped.length > 0, 'the other process found the lock held');
    for (let i = 1; i < runs.length; i++) {
      const [prev, next] = [runs[i - 1], runs[i]] as [(typeof runs)[0], (typeof runs)[0]];
      // Each run's span is measured inside the lease; a few ms of slack for the log line's own time.
      assert.ok(next.start >= prev.end - 5, `run of ${next.pid} at ${next.start} overlaps the run of ${prev.pid} ending ${prev.end}`);
    }
    assert.equal(await storage.exists('temp/a'), true, 'dry runs removed nothing');
  });

  it('logs one line per run and counts runs and removals in the registry', async () => {
    const { dir, root, storage } = await fresh('metrics');
    await putOld(storage, root, 'temp/a', '123');
    await putOld(storage, root, 'temp/b', '45');
    await putOld(storage, root, 'keep/c', '6');
    const registry = new Registry();
    const { lines, log } = collect();
    const scheduler = startLifecycle(storage, [{ prefix: 'temp/', expireAfter: '1h' }, { prefix: 'x/', orphans: { keep: join(dir, 'missing.txt') } }], { dryRun: false, intervalMs: 3_600_000, lock: new FileRunLock(join(dir, 'l.lock')), log, registry });
    const report = await scheduler.runNow();
    assert.deepEqual(report?.rules[0]?.totals, { expire: { objects: 2, bytes: 5 } });
    await scheduler.stop();
    assert.equal(await scheduler.runNow(), undefined, 'stopped');
    assert.equal(lines.length, 1, `${lines.join('\n')}`);
    assert.match(lines[0] ?? '', /^warn lifecycle run in \d+ ms: rule 0 "temp\/": expire 2 \(5 bytes\); rule 1 "x\/": nothing, failed: E_CONFIG_INVALID /);
    const text = await registry.metrics();
    assert.match(text, /stowage_lifecycle_runs_total\{outcome="failed",dry_run="false"\} 1/);
    assert.match(text, /stowage_lifecycle_removed_objects_total\{rule="temp\/",action="expire"\} 2/);
    assert.match(text, /stowage_lifecycle_removed_bytes_total\{rule="temp\/",action="expire"\} 5/);
    assert.deepEqual([await storage.exists('temp/a'), await storage.exists('keep/c')], [false, true]);

    const dryRegistry = new Registry();
    await putOld(storage, root, 'temp/d', '7');
    const dry = startLifecycle(storage, [{ prefix: 'temp/', expireAfter: '1h' }], { dryRun: true, registry: dryRegistry, log });
    await dry.runNow();
    await dry.stop();
    const dryText = await dryRegistry.metrics();
    assert.match(dryText, /stowage_lifecycle_runs_total\{outcome="ok",dry_run="true"\} 1/);
    assert.doesNotMatch(dryText, /stowage_lifecycle_removed_objects_total\{/, 'a dry run removes and counts nothing');
    assert.equal(await storage.exists('temp/d'), true);
    assert.match(lines.at(-1) ?? '', /^info lifecycle dry run \(nothing removed\) in \d+ ms: rule 0 "temp\/": expire 1 \(1 bytes\)$/);
  });

  it('runs at start and then on its interval', async () => {
    const { root, storage } = await fresh('interval');
    const { lines, log } = collect();
    const scheduler = startLifecycle(storage, [{ prefix: 'temp/', expireAfter: '1s' }], { dryRun: false, intervalMs: 400, log });
    await sleep(150);
    assert.equal(lines.length, 1, 'the first run starts at once');
    await putOld(storage, root, 'temp/late', 'x');
    await sleep(600);
    await scheduler.stop();
    assert.ok(lines.length >= 2 && lines.length <= 4, lines.join('\n'));
    assert.ok(lines.some((l) => /expire 1 /.test(l)), lines.join('\n'));
    assert.equal(await storage.exists('temp/late'), false);
  });

  it('cancels a run whose lease is lost, and stop() waits for a run in progress', async () => {
    const { dir, root, storage } = await fresh('lost');
    await putOld(storage, root, 'temp/a', 'x');
    const slow = storage.withDriver((d) => withFaults(d, { seed: 1, rules: [{ operations: ['list'], fault: { kind: 'latency', ms: 800 } }] }));
    const path = join(dir, 'l.lock');
    const { lines, log } = collect();
    const scheduler = startLifecycle(slow, [{ prefix: 'temp/', expireAfter: '1h' }], { dryRun: false, intervalMs: 3_600_000, leaseMs: 150, lock: new FileRunLock(path), log });
    await sleep(200);
    await rm(path); // as if another instance had taken the lease over: the next renewal fails
    const report = await scheduler.runNow();
    assert.equal(report?.rules[0]?.error?.code, 'E_ABORTED');
    assert.match(lines[0] ?? '', /^warn .*failed: E_ABORTED .*lifecycle lock was lost/);
    assert.equal(await storage.exists('temp/a'), true);
    // Its next run is an hour away: stopped, so its timer does not hold the test process for that hour.
    await scheduler.stop();

    const again = startLifecycle(slow, [{ prefix: 'temp/', expireAfter: '1h' }], { dryRun: false, intervalMs: 3_600_000, log });
    await sleep(100);
    const started = Date.now();
    await again.stop();
    assert.ok(Date.now() - started >= 500, 'waited for the listing in progress');
    assert.match(lines.at(-1) ?? '', /failed: E_ABORTED .*scheduler stopped/);
    assert.equal(await storage.exists('temp/a'), true);
  });
});
