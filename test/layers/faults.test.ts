/**
 * The fault-injection layer through `storage.withDriver(d => withFaults(d, ...))`: each
 * kind of fault does what it says and nothing more, the choices repeat for a seed, and
 * bad rules are refused. (With no rules, the conformance suite runs through it unchanged:
 * test/conformance/layers.test.ts.)
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { createStorage, withFaults, type FaultRule, type FaultyDriver, type Storage } from '../../src/index.js';
import { rejectsWith } from '../conformance/harness.js';

/** A memory storage behind a fault layer with `rules`, and the layer itself. */
function faulty(rules: FaultRule[], seed = 1): { storage: Storage; faults: FaultyDriver } {
  let faults: FaultyDriver | undefined;
  const storage = createStorage({ driver: 'memory' }).withDriver((d) => (faults = withFaults(d, { seed, rules })));
  return { storage, faults: faults as FaultyDriver };
}

describe('fault layer', () => {
  let root: string;
  before(async () => {
    root = await mkdtemp(join(tmpdir(), 'stowage-faults-'));
  });
  after(async () => rm(root, { recursive: true, force: true }));

  it('fails a picked call with the code before it reaches the backend, with the code usual retryable flag', async () => {
    const { storage, faults } = faulty([{ operations: ['put'], fault: { kind: 'error', code: 'E_UNAVAILABLE' } }]);
    const err = await rejectsWith(storage.put('a.txt', 'hello'), 'E_UNAVAILABLE', 'fault injected into put');
    assert.equal(err.retryable, true);
    assert.equal(await storage.exists('a.txt'), false, 'nothing was stored');
    assert.deepEqual(faults.injected, [{ operation: 'put', kind: 'error' }]);
    const denied = faulty([{ operations: ['stat'], fault: { kind: 'error', code: 'E_ACCESS_DENIED' } }]);
    assert.equal((await rejectsWith(denied.storage.stat('x'), 'E_ACCESS_DENIED')).retryable, false);
  });

  it('runs a call whose reply it loses: the write took effect though the caller saw a failure', async () => {
    const { storage } = faulty([{ operations: ['put'], times: 1, fault: { kind: 'lostReply', code: 'E_TIMEOUT' } }]);
    await rejectsWith(storage.put('a.txt', 'hello'), 'E_TIMEOUT', 'answer was lost');
    assert.equal((await storage.get('a.txt')).toString(), 'hello');
    // `times` spent: the next put is left alone.
    assert.equal((await storage.put('b.txt', 'x')).size, 1);
  });

  it('cuts a read stream after the given bytes, which arrive intact, on fs and memory', async () => {
    const content = Buffer.alloc(200_000, 7);
    for (const base of [createStorage({ driver: 'memory' }), createStorage({ driver: 'fs', root })]) {
      await base.put('big.bin', content);
      const storage = base.withDriver((d) => withFaults(d, { seed: 1, rules: [{ fault: { kind: 'cut', afterBytes: 1000 } }] }));
      await rejectsWith(storage.get('big.bin'), 'E_UNAVAILABLE', 'cut after 1000 bytes');
      const reader = await storage.getStream('big.bin');
      const seen: Buffer[] = [];
      const consume = async () => {
        for await (const chunk of reader.stream) seen.push(chunk as Buffer);
      };
      await rejectsWith(consume(), 'E_UNAVAILABLE');
      assert.deepEqual(Buffer.concat(seen), content.subarray(0, 1000));
      // A rule for cuts picks reads only: writes and stats pass.
      assert.equal((await storage.stat('big.bin')).size, content.length);
      await storage.put('small.txt', 'ok');
      await storage.close();
    }
  });

  it('adds latency, and a stall ends in E_TIMEOUT without running the call', async () => {
    const slow = faulty([{ operations: ['stat'], fault: { kind: 'latency', ms: 60 } }]);
    await slow.storage.put('a.txt', 'x');
    const started = performance.now();
    assert.equal((await slow.storage.stat('a.txt')).size, 1);
    assert.ok(performance.now() - started >= 55, 'the stat waited for the added latency');
    const stuck = faulty([{ operations: ['put'], fault: { kind: 'stall', ms: 20 } }]);
    await rejectsWith(stuck.storage.put('a.txt', 'x'), 'E_TIMEOUT', 'did not answer');
    assert.deepEqual(stuck.faults.injected, [{ operation: 'put', kind: 'stall' }]);
    assert.equal(await stuck.storage.exists('a.txt'), false, 'the stalled put never ran');
  });

  it('ends a long stall when the layer is closed', { timeout: 20_000 }, async () => {
    const { storage, faults } = faulty([{ operations: ['stat'], fault: { kind: 'stall', ms: 3_600_000 } }]);
    const pending = storage.stat('a.txt');
    await faults.close();
    await rejectsWith(pending, 'E_TIMEOUT');
  });

  it('picks the same calls for the same seed, others for another, near the rule probability', async () => {
    const run = async (seed: number) => {
      const { storage } = faulty([{ operations: ['put'], probability: 0.3, fault: { kind: 'error', code: 'E_UNAVAILABLE' } }], seed);
      const outcomes: boolean[] = [];
      for (let i = 0; i < 200; i++) outcomes.push(await storage.put(`k${i}`, 'x').then(() => true, () => false));
      return outcomes;
    };
    const first = await run(7);
    assert.deepEqual(await run(7), first, 'a seed repeats its choices');
    assert.notDeepEqual(await run(8), first, 'another seed makes other choices');
    const failed = first.filter((ok) => !ok).length;
    assert.ok(failed > 30 && failed < 90, `about 30 % of 200 puts failed (${failed})`);
  });

  it('applies every rule that picks a call, up to each rule limit', async () => {
    const { storage, faults } = faulty([
      { operations: ['stat'], times: 2, fault: { kind: 'latency', ms: 1 } },
      { operations: ['stat'], times: 1, fault: { kind: 'error', code: 'E_UNAVAILABLE' } },
    ]);
    await storage.put('a.txt', 'x');
    await rejectsWith(storage.stat('a.txt'), 'E_UNAVAILABLE');
    assert.equal((await storage.stat('a.txt')).size, 1);
    assert.equal((await storage.stat('a.txt')).size, 1);
    assert.deepEqual(faults.injected, [
      { operation: 'stat', kind: 'latency' },
      { operation: 'stat', kind: 'error' },
      { operation: 'stat', kind: 'latency' },
    ]);
  });

  it('refuses rules it could not apply, naming the rule', () => {
    const memory = createStorage({ driver: 'memory' }).driver;
    const bad: [FaultRule, RegExp][] = [
      [{ probability: 2, fault: { kind: 'error', code: 'E_UNAVAILABLE' } }, /rule 0: probability/],
      [{ times: -1, fault: { kind: 'error', code: 'E_UNAVAILABLE' } }, /rule 0: times/],
      [{ fault: { kind: 'latency', ms: -5 } }, /rule 0: latency ms/],
      [{ operations: ['put'], fault: { kind: 'cut', afterBytes: 10 } }, /rule 0: a cut applies to read only/],
    ];
    for (const [rule, message] of bad) {
      assert.throws(() => withFaults(memory, { seed: 1, rules: [rule] }), (err: Error & { code?: string }) => err.code === 'E_INVALID_ARGUMENT' && message.test(err.message));
    }
  });
});
