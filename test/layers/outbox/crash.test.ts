/**
 * The outbox survives SIGKILL: a child process queues writes (backend down) and is
 * killed at each durable step of one write, and at random instants in a loop; a restart
 * on the same folder then delivers every write the child acknowledged, intact, once, and
 * nothing it did not acknowledge unless that write had reached the journal.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { inspectOutbox, MemoryDriver, outboxOf, Storage, withOutbox, type OutboxControl, type SpoolStep, type WriteResult } from '../../../src/index.js';
import { crashBody, sha256, tempDir } from './helpers.js';

const CHILD = join(import.meta.dirname, 'crash-child.ts');

/** Runs the child until it exits (or `killAfterAck` ms after its first ack, when given); resolves the acknowledged indexes. */
function runChild(env: Record<string, string>, killAfterAck?: number): Promise<{ acked: Set<number>; signal: NodeJS.Signals | null }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', CHILD], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    const acked = new Set<number>();
    let stderr = '';
    let buffered = '';
    child.stdout.setEncoding('utf8').on('data', (text: string) => {
      buffered += text;
      const lines = buffered.split('\n');
      buffered = lines.pop() ?? '';
      for (const line of lines) {
        const n = /^ack (\d+)$/.exec(line)?.[1];
        if (n === undefined) continue;
        if (acked.size === 0 && killAfterAck !== undefined) setTimeout(() => child.kill('SIGKILL'), killAfterAck);
        acked.add(Number(n));
      }
    });
    child.stderr.setEncoding('utf8').on('data', (text: string) => (stderr += text));
    child.on('error', reject);
    child.on('exit', (code, signal) => {
      if (signal !== 'SIGKILL' && code !== 0) reject(new Error(`the child failed (${code}): ${stderr}`));
      else resolve({ acked, signal });
    });
  });
}

/** Opens the folder over a healthy backend, drains it, and checks what arrived. */
async function recoverAndCheck(dir: string, acked: ReadonlySet<number>, written: number): Promise<{ backend: MemoryDriver; delivered: Set<number> }> {
  const backend = new MemoryDriver();
  const storage = new Storage<WriteResult>(withOutbox(backend, { dir, onWarning: () => undefined }));
  const control = outboxOf(storage.driver) as OutboxControl;
  const report = await control.drain();
  assert.deepEqual(report.failed, []);
  assert.equal(report.pending, 0);
  const delivered = new Set<number>();
  const plain = new Storage(backend);
  for await (const info of plain.listAll({ prefix: 'crash/' })) {
    const n = Number(info.key.slice('crash/'.length));
    assert.equal(info.sha256, sha256(crashBody(n)), `crash/${n} is intact`);
    assert.ok((await plain.get(info.key)).equals(crashBody(n)));
    delivered.add(n);
  }
  for (const n of acked) assert.ok(delivered.has(n), `acknowledged write ${n} was delivered`);
  assert.ok(delivered.size <= written);
  // Each entry delivered once, and nothing left behind in the folder.
  assert.equal((await control.status()).delivered, report.delivered);
  assert.deepEqual(await readdir(join(dir, 'spool')), []);
  assert.deepEqual(await readdir(join(dir, 'tmp')), []);
  await storage.close();
  assert.equal((await inspectOutbox(dir)).status.pending, 0, 'the journal holds no live entry');
  return { backend, delivered };
}

describe('outbox: SIGKILL at any instant', () => {
  for (const step of ['synced', 'renamed', 'dir-synced', 'journaled'] satisfies SpoolStep[]) {
    it(`killed at the "${step}" step of a write: the acknowledged writes are delivered; that write only if it was journaled`, async () => {
      const dir = await tempDir(`outbox-crash-${step}`);
      const crashAt = 9;
      const { acked, signal } = await runChild({ OUTBOX_DIR: dir, FIRST: '0', COUNT: '16', CRASH_STEP: step, CRASH_AT: String(crashAt) });
      assert.equal(signal, 'SIGKILL', 'the child was killed at the step');
      assert.ok(!acked.has(crashAt), 'the write killed at the step was never acknowledged');
      const { delivered } = await recoverAndCheck(dir, acked, 16);
      assert.equal(delivered.has(crashAt), step === 'journaled', step === 'journaled' ? 'a journaled write is kept' : 'a write not journaled leaves nothing');
    });
  }

  it('killed at random instants, restarted on the same folder each time: nothing acknowledged is lost or corrupt', async () => {
    const dir = await tempDir('outbox-crash-random');
    const acked = new Set<number>();
    const rounds = 6;
    for (let round = 0; round < rounds; round++) {
      const result = await runChild({ OUTBOX_DIR: dir, FIRST: String(round * 100_000), COUNT: '100000' }, Math.floor(Math.random() * 150));
      assert.equal(result.signal, 'SIGKILL');
      for (const n of result.acked) acked.add(n);
    }
    assert.ok(acked.size >= rounds, 'every round acknowledged writes before it was killed');
    const { delivered } = await recoverAndCheck(dir, acked, rounds * 100_000);
    console.log(`# random kills: ${rounds} rounds, ${acked.size} acknowledged, ${delivered.size} delivered, 0 lost, 0 corrupt`);
  });
});
