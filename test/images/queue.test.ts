/** The render queue: at most `concurrency` tasks run, `maxWaiting` wait, and one past that is refused at once. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isStorageError } from '../../src/index.js';
import { WorkQueue } from '../../src/images/queue.js';

/** A task that runs until its `finish` is called, recording when it starts. */
function gate(started: string[], name: string) {
  let finish!: (value: string) => void;
  let fail!: (err: Error) => void;
  const done = new Promise<string>((resolve, reject) => {
    finish = resolve;
    fail = reject;
  });
  return { task: () => (started.push(name), done), finish: () => finish(name), fail: () => fail(new Error(`${name} failed`)) };
}

const turn = () => new Promise((resolve) => setImmediate(resolve));

describe('image work queue', () => {
  it('runs concurrency tasks, queues maxWaiting more in order, and refuses the next with a retryable E_UNAVAILABLE', async () => {
    const queue = new WorkQueue(2, 1);
    const started: string[] = [];
    const [a, b, c] = [gate(started, 'a'), gate(started, 'b'), gate(started, 'c')];
    const runs = [queue.run(a.task), queue.run(b.task), queue.run(c.task)];
    await turn();
    assert.deepEqual(started, ['a', 'b']);
    assert.deepEqual([queue.active, queue.waiting], [2, 1]);
    await assert.rejects(queue.run(async () => 'd'), (err: unknown) => isStorageError(err, 'E_UNAVAILABLE') && err.retryable && /2 running, 1 waiting/.test(err.message));
    a.finish();
    await turn();
    assert.deepEqual(started, ['a', 'b', 'c']);
    assert.deepEqual([queue.active, queue.waiting], [2, 0]);
    b.finish();
    c.finish();
    assert.deepEqual(await Promise.all(runs), ['a', 'b', 'c']);
    assert.deepEqual([queue.active, queue.waiting], [0, 0]);
  });

  it('frees the turn of a task that fails', async () => {
    const queue = new WorkQueue(1, 1);
    const started: string[] = [];
    const [a, b] = [gate(started, 'a'), gate(started, 'b')];
    const first = queue.run(a.task);
    const second = queue.run(b.task);
    a.fail();
    await assert.rejects(first, /a failed/);
    await turn();
    assert.deepEqual(started, ['a', 'b']);
    b.finish();
    assert.equal(await second, 'b');
    assert.equal(await queue.run(async () => 'again'), 'again');
  });

  it('refuses settings that are not whole numbers in range', () => {
    assert.throws(() => new WorkQueue(0, 4), (err: unknown) => isStorageError(err, 'E_CONFIG_INVALID') && /concurrency/.test(err.message));
    assert.throws(() => new WorkQueue(1, -1), (err: unknown) => isStorageError(err, 'E_CONFIG_INVALID') && /queue length/.test(err.message));
  });
});
