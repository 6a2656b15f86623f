/** The pool of reusable buffers (core/buffer-pool.ts) that image variants read their originals into. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { BufferPool } from '../../src/core/buffer-pool.js';

const KiB = 1024;

describe('BufferPool', () => {
  it('lends new buffers in 64 KiB steps, and the smallest idle one that fits once given back', () => {
    const pool = new BufferPool(1024 * KiB);
    const [small, large] = [pool.take(10), pool.take(200 * KiB)];
    assert.deepEqual([small.length, large.length], [64 * KiB, 256 * KiB]);
    pool.give(large);
    pool.give(small);
    assert.equal(pool.idleBytes, 320 * KiB);
    assert.equal(pool.take(64 * KiB), small, 'the smallest that fits');
    assert.equal(pool.take(65 * KiB), large);
    assert.equal(pool.idleBytes, 0);
    assert.notEqual(pool.take(1), small, 'none idle: a new one');
  });

  it('makes a new buffer when no idle one is large enough, and keeps none over its size bound', () => {
    const pool = new BufferPool(1024 * KiB, 256 * KiB);
    const first = pool.take(64 * KiB);
    pool.give(first);
    const larger = pool.take(128 * KiB);
    assert.notEqual(larger, first);
    assert.equal(pool.idleBytes, 64 * KiB, 'the small one stays idle');
    const huge = pool.take(512 * KiB);
    pool.give(huge); // over 256 KiB: a buffer of its own, left to the garbage collector
    assert.equal(pool.idleBytes, 64 * KiB);
    assert.notEqual(pool.take(512 * KiB), huge);
  });

  it('drops the smallest idle buffers first when over its memory bound', () => {
    const pool = new BufferPool(256 * KiB);
    const [a, b, c] = [pool.take(64 * KiB), pool.take(64 * KiB), pool.take(128 * KiB)];
    pool.give(a);
    pool.give(b);
    pool.give(c);
    assert.equal(pool.idleBytes, 256 * KiB);
    const d = pool.take(192 * KiB);
    pool.give(d); // 448 KiB idle: a, b, then c go (the smallest first) until 256 KiB or less remain
    assert.equal(pool.idleBytes, 192 * KiB);
    assert.equal(pool.take(100 * KiB), d);
    assert.equal(pool.idleBytes, 0);
    pool.give(c);
    pool.give(a); // 192 KiB: both kept
    assert.equal(pool.take(10), a, 'the smallest that fits');
    const none = new BufferPool(0);
    const once = none.take(1);
    none.give(once);
    assert.equal(none.idleBytes, 0);
    assert.notEqual(none.take(1), once);
  });
});
