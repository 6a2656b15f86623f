/**
 * The service as a real process with STOWAGE_LIFECYCLE: it runs the rules at start and on
 * STOWAGE_LIFECYCLE_INTERVAL, logs a line per run, serves the lifecycle metrics on
 * /metrics, removes nothing in a dry run, and refuses to start with a bad rule.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm, utimes } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, describe, it } from 'node:test';
import { createStorage, type Storage } from '../../src/index.js';
import { LISTENING, runServerWithin } from '../http/helpers.js';

const dirs: string[] = [];
after(async () => Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true }))));

async function putOld(storage: Storage, root: string, key: string): Promise<void> {
  await storage.put(key, 'old!');
  const when = new Date(Date.now() - 2 * 3_600_000);
  await utimes(join(root, key), when, when);
}

async function until(what: string, check: () => boolean | Promise<boolean>, ms = 15_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await sleep(100);
  }
}

async function setUp(label: string): Promise<{ root: string; storage: Storage }> {
  const dir = await mkdtemp(join(tmpdir(), `stowage-lifecycle-service-${label}-`));
  dirs.push(dir);
  const root = join(dir, 'uploads');
  const storage = createStorage({ driver: 'fs', root });
  await putOld(storage, root, 'temp/old');
  await storage.put('temp/new', 'new');
  await putOld(storage, root, 'keep/old');
  return { root, storage };
}

const RULES = JSON.stringify([{ prefix: 'temp/', expireAfter: '1h' }]);

describe('service: lifecycle rules', () => {
  it('runs the rules at start and on their interval, and serves their metrics', async () => {
    const { root, storage } = await setUp('runs');
    const server = await runServerWithin({ PORT: '0', STORAGE_LOCAL_PATH: root, STOWAGE_LIFECYCLE: RULES, STOWAGE_LIFECYCLE_INTERVAL: '1s' }, LISTENING);
    let output = server.output;
    server.child.stdout?.on('data', (d: Buffer) => (output += d.toString()));
    try {
      const address = LISTENING.exec(output)?.[1] as string;
      await until('the first run', () => /lifecycle run in \d+ ms: rule 0 \\"temp\/\\": expire 1 \(4 bytes\)/.test(output));
      assert.deepEqual([await storage.exists('temp/old'), await storage.exists('temp/new'), await storage.exists('keep/old')], [false, true, true]);
      // An object that is old by the next run is removed by it, without a restart.
      await putOld(storage, root, 'temp/later');
      await until('a later run removing temp/later', async () => !(await storage.exists('temp/later')));
      const metrics = await (await fetch(`${address}/metrics`)).text();
      assert.match(metrics, /stowage_lifecycle_removed_objects_total\{rule="temp\/",action="expire"\} 2/);
      assert.match(metrics, /stowage_lifecycle_removed_bytes_total\{rule="temp\/",action="expire"\} 8/);
      const runs = Number(/stowage_lifecycle_runs_total\{outcome="ok",dry_run="false"\} (\d+)/.exec(metrics)?.[1]);
      assert.ok(runs >= 2, metrics);
      assert.match(metrics, /stowage_http_requests_total/, 'the one registry of /metrics');
    } finally {
      const exited = new Promise<number | null>((resolve) => server.child.once('exit', resolve));
      server.child.kill('SIGTERM');
      assert.equal(await exited, 0, output);
    }
  });

  it('removes nothing in a dry run, logging what it would remove', async () => {
    const { root, storage } = await setUp('dry');
    const server = await runServerWithin({ PORT: '0', STORAGE_LOCAL_PATH: root, STOWAGE_LIFECYCLE: RULES, STOWAGE_LIFECYCLE_DRY_RUN: 'true' }, /lifecycle dry run \(nothing removed\) in \d+ ms: rule 0 \\"temp\/\\": expire 1 \(4 bytes\)/);
    const exited = new Promise<number | null>((resolve) => server.child.once('exit', resolve));
    server.child.kill('SIGTERM');
    assert.equal(await exited, 0);
    assert.equal(await storage.exists('temp/old'), true);
  });

  it('refuses to start with a bad rule, naming the variable, the rule and the field', async () => {
    const { root } = await setUp('bad');
    const bad = JSON.stringify([{ prefix: 'temp/', expireAfter: '1h' }, { prefix: 'x/', abortIncompleteAfter: 'weekly' }]);
    const server = await runServerWithin({ PORT: '0', STORAGE_LOCAL_PATH: root, STOWAGE_LIFECYCLE: bad }, /cannot start/);
    await new Promise((resolve) => (server.child.exitCode === null ? server.child.once('exit', resolve) : resolve(undefined)));
    assert.equal(server.child.exitCode, 1);
    assert.match(server.output, /cannot start: invalid lifecycle rules in STOWAGE_LIFECYCLE: rule 1 field abortIncompleteAfter must be a duration like 90s, 30m, 24h or 7d/);
  });
});
