/**
 * SIGKILL at any point leaves exact counters: a child changes the storage without pause
 * and is killed at a random instant; the next process to open the counters replays the
 * journal, repairs the writes the kill interrupted, and must then agree with a listing to
 * the byte (reconcile's dry run finds no drift), with every limit held. Six kills in CI,
 * thirty with STOWAGE_CHAOS=full.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { rm } from 'node:fs/promises';
import { once } from 'node:events';
import { describe, it } from 'node:test';
import { CRASH_RULES, quotaStorage, tempRoot } from './helpers.js';

const ROUNDS = process.env.STOWAGE_CHAOS === 'full' ? 30 : 6;
const child = new URL('./crash-child.ts', import.meta.url).pathname;

/** Runs the child until it is ready, lets it work `ms`, and SIGKILLs it. */
async function runAndKill(root: string, seed: number, ms: number): Promise<void> {
  const proc = spawn(process.execPath, ['--import', 'tsx', child], { env: { ...process.env, ROOT: root, SEED: String(seed) }, stdio: ['ignore', 'pipe', 'inherit'] });
  let output = '';
  proc.stdout.setEncoding('utf8');
  await new Promise<void>((resolve, reject) => {
    proc.stdout.on('data', (chunk: string) => {
      output += chunk;
      if (output.includes('ready')) resolve();
    });
    proc.once('exit', (code) => reject(new Error(`the child exited with ${code} before it was killed`)));
  });
  await new Promise((resolve) => setTimeout(resolve, ms));
  assert.equal(proc.exitCode, null, 'the child stopped on its own');
  proc.kill('SIGKILL');
  await once(proc, 'exit');
}

describe('quota counters after SIGKILL (fs, embedded store)', () => {
  it(`are exact after each of ${ROUNDS} kills at random instants`, async () => {
    const root = await tempRoot('crash');
    try {
      for (let round = 0; round < ROUNDS; round++) {
        await runAndKill(root, round + 1, 150 + ((round * 137) % 500));
        const { storage, control, logs } = quotaStorage(root, CRASH_RULES);
        const report = await control.reconcile({ dryRun: true });
        assert.deepEqual(report.drift, [], `round ${round}: ${logs.join('; ')}`);
        assert.ok(report.objects > 0, 'the child stored something');
        for (const counter of await control.counters()) {
          assert.ok(counter.usedBytes <= (counter.maxBytes ?? Infinity), `${counter.prefix} holds ${counter.usedBytes} bytes`);
          assert.ok(counter.usedObjects <= (counter.maxObjects ?? Infinity), `${counter.prefix} holds ${counter.usedObjects} objects`);
          assert.equal(counter.reservedBytes, 0, 'no reservation outlives its write');
        }
        await storage.close();
      }
    } finally {
      await rm(root, { recursive: true, force: true });
    }
  });
});
