/**
 * Unit tests of the resume state's bookkeeping: state writes are serialized and
 * coalesced (never two in flight, the last asked-for content always written), a failed
 * write loses nothing but itself, and the reserved area's rule.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { RecordWriter } from '../../../src/drivers/s3/upload-state.js';
import { isReservedKey } from '../../../src/core/keys.js';

/** A write that finishes when the test says so. */
function controlledWrites(): { writer: RecordWriter; started: string[]; finish: (fail?: boolean) => void; inFlight: () => number; content: { value: string } } {
  const content = { value: '' };
  const started: string[] = [];
  const pending: { resolve: () => void; reject: (e: Error) => void }[] = [];
  let inFlight = 0;
  let most = 0;
  const writer = new RecordWriter(() => {
    started.push(content.value);
    inFlight++;
    most = Math.max(most, inFlight);
    return new Promise<void>((resolve, reject) => pending.push({ resolve, reject })).finally(() => inFlight--);
  });
  return {
    writer,
    started,
    content,
    inFlight: () => most,
    finish: (fail = false) => {
      const next = pending.shift();
      if (fail) next?.reject(new Error('state write failed'));
      else next?.resolve();
    },
  };
}

const tick = () => new Promise((resolve) => setImmediate(resolve));

describe('RecordWriter', () => {
  it('never has two writes in flight, coalesces what arrives meanwhile, and writes the latest content', async () => {
    const w = controlledWrites();
    w.content.value = 'part 1';
    w.writer.update();
    w.content.value = 'part 2';
    w.writer.update();
    w.content.value = 'part 3';
    w.writer.update();
    await tick();
    assert.deepEqual(w.started, ['part 1'], 'one write in flight');
    w.finish();
    await tick();
    assert.deepEqual(w.started, ['part 1', 'part 3'], 'the updates during the first write became one write of the latest');
    const flushed = w.writer.flush();
    w.finish();
    await flushed;
    assert.equal(w.inFlight(), 1);
  });

  it('goes on after a failed write', async () => {
    const w = controlledWrites();
    w.content.value = 'a';
    w.writer.update();
    w.content.value = 'b';
    w.writer.update();
    await tick();
    w.finish(true);
    await tick();
    assert.deepEqual(w.started, ['a', 'b']);
    const flushed = w.writer.flush();
    w.finish();
    await flushed;
    w.content.value = 'c';
    w.writer.update();
    await tick();
    assert.deepEqual(w.started, ['a', 'b', 'c'], 'a new write after the queue drained');
    w.finish();
    await w.writer.flush();
  });
});

describe('the reserved area', () => {
  it('is the .stowage segment at the start of a key, nothing else', () => {
    assert.equal(isReservedKey('.stowage'), true);
    assert.equal(isReservedKey('.stowage/uploads/x.json'), true);
    assert.equal(isReservedKey('.stowagex/a'), false);
    assert.equal(isReservedKey('photos/.stowage/a'), false);
  });
});
