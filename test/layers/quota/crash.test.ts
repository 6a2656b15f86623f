/**
 * SIGKILL at any point leaves exact counters: a child changes the storage without pause
 * and is killed at a random instant; the next process to open the counters replays the
 * journal, repairs the writes the kill interrupted, and must then agree with a listing to
 * the byte (reconcile's dry run finds no drift), with every limit held. On fs and on the
 * test RGW (embedded store in a local folder): six and three kills in CI, thirty and ten
 * with STOWAGE_CHAOS=full.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { rm } from 'node:fs/promises';
import { once } from 'node:events';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, it } from 'node:test';
import { createStorage, quotaOf, type QuotaControl, type Storage } from '../../../src/index.js';
import { emptyStorage, s3Options, uniqueBucket } from '../../drivers/s3/env.js';
import { CRASH_RULES, quotaStorage, tempRoot } from './helpers.js';

const FULL = process.env.STOWAGE_CHAOS === 'full';
const child = new URL('./crash-child.ts', import.meta.url).pathname;
/**
 * How long after a kill the RGW test opens the counters again: a PUT whose body the
 * killed child had sent is still stored by the service after the kill, and a repair's
 * look at the key before then misses it (the README's guarantees say so).
 */
const S3_SETTLE_MS = 1000;

/** Runs the child (its storage named by `env`) until it is ready, lets it work `ms`, and SIGKILLs it. */
async function runAndKill(env: Record<string, string>, seed: number, ms: number): Promise<void> {
  const proc = spawn(process.execPath, ['--import', 'tsx', child], { env: { ...process.env, ...env, SEED: String(seed) }, stdio: ['ignore', 'pipe', 'inherit'] });
  let output = '';
  proc.stdout.setEncoding('utf8');
  await new Promise<void>((resolve, reject) => {
    proc.stdout.on('data', (chunk: string) => {
      output += chunk;
      if (output.includes('ready')) resolve();
    });
    proc.once('exit', (code) => reject(new Error(`the child exited with ${code} before it was killed`)));
  });
  await sleep(ms);
  assert.equal(proc.exitCode, null, 'the child stopped on its own');
  proc.kill('SIGKILL');
  await once(proc, 'exit');
}

/** Kills the child `rounds` times; after each kill, `open` gives the next process's storage, whose counters must agree with a listing. */
async function killRounds(rounds: number, env: Record<string, string>, open: () => { storage: Storage; control: QuotaControl; logs: string[] }, settleMs = 0): Promise<void> {
  for (let round = 0; round < rounds; round++) {
    await runAndKill(env, round + 1, 150 + ((round * 137) % 500));
    // As a restart would (see S3_SETTLE_MS).
    await sleep(settleMs);
    const { storage, control, logs } = open();
    try {
      const report = await control.reconcile({ dryRun: true });
      assert.deepEqual(report.drift, [], `round ${round}: ${logs.join('; ')}`);
      assert.ok(report.objects > 0, 'the child stored something');
      for (const counter of await control.counters()) {
        assert.ok(counter.usedBytes <= (counter.maxBytes ?? Infinity), `${counter.prefix} holds ${counter.usedBytes} bytes`);
        assert.ok(counter.usedObjects <= (counter.maxObjects ?? Infinity), `${counter.prefix} holds ${counter.usedObjects} objects`);
        assert.equal(counter.reservedBytes, 0, 'no reservation outlives its write');
      }
    } finally {
      await storage.close();
    }
  }
}

describe('quota counters after SIGKILL (fs, embedded store)', () => {
  const rounds = FULL ? 30 : 6;
  it(`are exact after each of ${rounds} kills at random instants`, async () => {
    const root = await tempRoot('crash');
    try {
      await killRounds(rounds, { ROOT: root }, () => quotaStorage(root, CRASH_RULES));
    } finally {
      await rm(root, { recursive: true, force: true });
    }
  });
});

describe('quota counters after SIGKILL (RGW, embedded store)', () => {
  const rounds = FULL ? 10 : 3;
  it(`are exact after each of ${rounds} kills at random instants`, async () => {
    const dir = await tempRoot('crash-s3');
    const bucket = uniqueBucket('quota-crash');
    const open = () => {
      const logs: string[] = [];
      const storage = createStorage({ driver: 's3', ...s3Options(bucket), quotas: { rules: CRASH_RULES, dir: join(dir, 'quota'), log: (line) => logs.push(line) } });
      return { storage, control: quotaOf(storage.driver) as QuotaControl, logs };
    };
    // The bucket is made and emptied without quotas: neither is a change the counters see.
    const plain = createStorage({ driver: 's3', ...s3Options(bucket) });
    await plain.verify({ createBucket: true });
    try {
      await killRounds(rounds, { BUCKET: bucket, QUOTA_DIR: join(dir, 'quota') }, open, S3_SETTLE_MS);
    } finally {
      await emptyStorage(plain);
      await rm(dir, { recursive: true, force: true });
    }
  });
});
