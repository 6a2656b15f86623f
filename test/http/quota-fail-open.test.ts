/**
 * Failing open (`quotas: { failOpen }`, STOWAGE_QUOTA_FAIL_OPEN=true) on a real redis-server
 * of this test's own: with Redis stopped, quota'd writes go through (the library resolves,
 * the service answers 201), even past the limit since nothing can check them; the outage
 * is logged as one warning a minute however many writes fail open, naming failing open and
 * the reconcile; and once Redis is back the counters still miss those writes until a
 * reconcile (`control.reconcile()`, `stowage quota reconcile --yes`) makes them exact, after
 * which the limit holds again. (Failing closed, the default, is quota-redis.test.ts's.)
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, describe, it, mock } from 'node:test';
import { privateRedisServer, type PrivateRedisServer } from '../../scripts/redis-server.mjs';
import { createStorage, isStorageError, quotaOf, type QuotaControl, type QuotaCounterReport } from '../../src/index.js';
import { cli } from '../cli/run.js';
import { LISTENING, runServerWithin } from './helpers.js';

const RULES = { 'users/*/': { maxBytes: 10_000 } };
/** The warning of an outage while failing open: it must say so, and name the repair. */
const FAILING_OPEN = /quota store unavailable \(.*unreachable.*\); failing open: writes go through uncounted until it is back, then run `stowage quota reconcile`/;

const cleanups: (() => Promise<void> | void)[] = [];
after(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup();
});

async function setUp(label: string): Promise<{ redis: PrivateRedisServer; root: string }> {
  const redis = privateRedisServer();
  const root = await mkdtemp(join(tmpdir(), `stowage-fail-open-${label}-`));
  cleanups.push(() => redis.stop(), () => rm(root, { recursive: true, force: true }));
  return { redis, root };
}

/**
 * Shuts Redis down cleanly, keeping its data (PrivateRedisServer.stop() removes its folder):
 * the counters from before the outage come back with it, so what they lack afterwards is
 * exactly what failed open.
 */
function shutDownKeepingData(redis: PrivateRedisServer): void {
  const args = ['-h', '127.0.0.1', '-p', String(redis.port)];
  spawnSync('redis-cli', [...args, 'shutdown'], { encoding: 'utf8' });
  assert.notEqual(spawnSync('redis-cli', [...args, 'ping'], { encoding: 'utf8' }).stdout.trim(), 'PONG', 'redis-server is down');
}

async function until<T>(what: string, attempt: () => Promise<T | undefined>, ms = 10_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await attempt().catch(() => undefined);
    if (value !== undefined) return value;
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await sleep(200);
  }
}

const ann = async (control: QuotaControl): Promise<QuotaCounterReport | undefined> => (await control.usage('users/ann/')).find((q) => q.pattern === 'users/*/');

describe('quotas failing open while Redis is down', () => {
  it('lets library writes through uncounted, warns once a minute, and control.reconcile() makes the counters exact', async () => {
    const { redis, root } = await setUp('lib');
    const lines: string[] = [];
    const storage = createStorage({ driver: 'fs', root, fsync: false, quotas: { rules: RULES, redisUrl: redis.url, failOpen: true, log: (line) => lines.push(line) } });
    cleanups.push(() => storage.close());
    const control = quotaOf(storage.driver) as QuotaControl;
    await storage.put('users/ann/before.bin', Buffer.alloc(1000));
    assert.equal((await ann(control))?.usedBytes, 1000, 'counted while Redis is up');

    shutDownKeepingData(redis);
    // Concurrent writes wait for the connection together (about 1.5 s), not one after another.
    // 4 x 3000 bytes on top of 1000 pass the 10,000 byte limit: nothing can check them.
    const written = await Promise.all([1, 2, 3, 4].map((i) => storage.put(`users/ann/down-${i}.bin`, Buffer.alloc(3000))));
    assert.deepEqual(written.map((w) => w.size), [3000, 3000, 3000, 3000]);
    await storage.put('users/ann/down-5.bin', Buffer.alloc(3000));
    const outage = () => lines.filter((line) => FAILING_OPEN.test(line));
    assert.equal(outage().length, 1, `one warning for five writes in the same minute:\n${lines.join('\n')}`);

    // A minute later the outage is worth another line (only the clock is moved: Redis is still down).
    const now = Date.now.bind(Date);
    mock.method(Date, 'now', () => now() + 61_000);
    try {
      await storage.put('users/ann/down-6.bin', Buffer.alloc(0));
    } finally {
      mock.restoreAll();
    }
    assert.equal(outage().length, 2, `a second warning after a minute:\n${lines.join('\n')}`);
    assert.equal((await storage.list({ prefix: 'users/ann/' })).objects.length, 7, 'every write was stored');

    redis.start();
    const stale = await until('Redis to answer again', () => ann(control));
    // Redis kept what it had counted; the writes that failed open are missing from it.
    assert.deepEqual([stale.usedBytes, stale.usedObjects], [1000, 1]);
    const report = await control.reconcile();
    assert.equal(report.repaired, true);
    assert.deepEqual(report.drift, [{ pattern: 'users/*/', prefix: 'users/ann/', counted: { bytes: 1000, objects: 1 }, listed: { bytes: 16_000, objects: 7 } }]);
    const exact = await ann(control);
    assert.deepEqual([exact?.usedBytes, exact?.usedObjects, exact?.level], [16_000, 7, 'full']);
    // Checked again, against the exact count: the folder is over its limit.
    await assert.rejects(storage.put('users/ann/after.bin', 'x'), (err: unknown) => isStorageError(err, 'E_QUOTA_EXCEEDED'));
  });

  it('answers 201 through the service with STOWAGE_QUOTA_FAIL_OPEN, logs one warning, and `stowage quota reconcile --yes` repairs the counters', async () => {
    const { redis, root } = await setUp('http');
    const env = { STORAGE_LOCAL_PATH: root, STOWAGE_QUOTAS: JSON.stringify(RULES), STOWAGE_QUOTA_REDIS_URL: redis.url, STOWAGE_QUOTA_FAIL_OPEN: 'true' };
    const server = await runServerWithin({ ...env, PORT: '0', STOWAGE_ACCESS_LOG: 'false' }, LISTENING);
    cleanups.push(() => void (server.child.exitCode === null && server.child.kill('SIGKILL')));
    let output = server.output;
    server.child.stdout?.on('data', (d: Buffer) => (output += d.toString()));
    server.child.stderr?.on('data', (d: Buffer) => (output += d.toString()));
    const base = LISTENING.exec(output)?.[1] as string;
    assert.ok(base, output);
    const put = (key: string, size: number) => fetch(`${base}/api/objects/${key}`, { method: 'PUT', body: Buffer.alloc(size, 'f') }).then((r) => r.status);
    const usage = async () => {
      const answer = (await (await fetch(`${base}/api/usage?prefix=users/ann/`)).json()) as { quotas?: { quota: string; usedBytes: number; usedObjects: number; level: string }[] };
      return answer.quotas?.find((q) => q.quota === 'users/*/');
    };

    assert.equal(await put('users/ann/before.bin', 1000), 201);
    shutDownKeepingData(redis);
    const statuses = await Promise.all([1, 2, 3, 4].map((i) => put(`users/ann/down-${i}.bin`, 3000)));
    statuses.push(await put('users/ann/down-5.bin', 3000));
    assert.deepEqual(statuses, [201, 201, 201, 201, 201], 'failing open, not 503');
    const warnings = output.split('\n').filter((line) => FAILING_OPEN.test(line));
    assert.equal(warnings.length, 1, `one warning for five writes:\n${output}`);
    assert.equal((JSON.parse(warnings[0] as string) as { level: number }).level, 40, 'at warn in the service log');

    redis.start();
    const stale = await until('the service to read the counters again', usage);
    assert.deepEqual([stale.usedBytes, stale.usedObjects], [1000, 1], 'the writes that failed open are not counted');
    // The CLI beside the running service: the counters live in Redis, which both reach.
    const fixed = await cli(['quota', 'reconcile', '--yes'], { env });
    assert.equal(fixed.code, 0, fixed.stderr);
    assert.match(fixed.stdout, /listed 6 objects in [\d.]+ s; 1 quota folder drifted of 1: repaired/);
    assert.match(fixed.stdout, /users\/ann\/\s+.*\s1 -> 6/);
    const exact = await usage();
    assert.deepEqual([exact?.usedBytes, exact?.usedObjects, exact?.level], [16_000, 6, 'full']);
    assert.equal(await put('users/ann/after.bin', 1), 507, 'the limit holds again');

    const exited = new Promise<number | null>((resolve) => server.child.once('exit', resolve));
    server.child.kill('SIGTERM');
    assert.equal(await exited, 0, output);
  });
});
