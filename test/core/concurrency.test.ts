/** The helpers of core/concurrency.ts that no other suite drives directly. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { BackgroundTasks } from '../../src/core/concurrency.js';

describe('BackgroundTasks', () => {
  it('waits for every task added so far, and a failing one does not fail the wait', async () => {
    const tasks = new BackgroundTasks();
    await tasks.settled(); // none: resolves at once
    const done: string[] = [];
    tasks.add(sleep(30).then(() => done.push('slow')));
    tasks.add(sleep(10).then(() => Promise.reject(new Error('a cache write that failed'))));
    tasks.add(Promise.resolve().then(() => done.push('quick')));
    await tasks.settled();
    assert.deepEqual(done, ['quick', 'slow']);
    await tasks.settled(); // the settled ones are gone
  });
});
