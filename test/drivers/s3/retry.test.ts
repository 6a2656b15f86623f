/** Unit tests for the retry policy: full jitter, throttling base, cap, Retry-After, replayability. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { backoffDelay, withRetry } from '../../../src/drivers/s3/retry.js';
import { DEFAULT_RETRY_POLICY as P } from '../../../src/index.js';

describe('backoffDelay', () => {
  it('grows exponentially from the base, with full jitter', () => {
    assert.equal(backoffDelay(P, 1, { retryable: true }, () => 0.999999), 99.9999);
    assert.equal(backoffDelay(P, 3, { retryable: true }, () => 0.5), 200);
    assert.equal(backoffDelay(P, 2, { retryable: true }, () => 0), 0);
  });

  it('uses the throttling base and never passes the cap', () => {
    assert.equal(backoffDelay(P, 1, { retryable: true, throttled: true }, () => 1), 500);
    assert.equal(backoffDelay(P, 30, { retryable: true }, () => 1), 20_000);
  });

  it('waits at least what Retry-After asks, within the cap', () => {
    assert.equal(backoffDelay(P, 1, { retryable: true, retryAfterSeconds: 2 }, () => 0), 2000);
    assert.equal(backoffDelay(P, 1, { retryable: true, retryAfterSeconds: 3600 }, () => 0), 20_000);
  });
});

describe('withRetry', () => {
  const fast = { ...P, baseDelayMs: 1 };
  it('retries temporary failures up to maxAttempts', async () => {
    let calls = 0;
    const result = await withRetry(async () => (++calls < 3 ? Promise.reject(new Error('temporary')) : 'ok'), { policy: fast, classify: () => ({ retryable: true }) });
    assert.equal(result, 'ok');
    assert.equal(calls, 3);
  });

  it('does not retry permanent failures or bodies that cannot be re-sent', async () => {
    let calls = 0;
    await assert.rejects(withRetry(async () => Promise.reject(new Error(`fail ${++calls}`)), { policy: fast, classify: () => ({ retryable: false }) }), /fail 1/);
    calls = 0;
    await assert.rejects(withRetry(async () => Promise.reject(new Error(`fail ${++calls}`)), { policy: fast, classify: () => ({ retryable: true }), replayable: false }), /fail 1/);
  });

  it('reports exhaustion through the caller', async () => {
    await assert.rejects(
      withRetry(async () => Promise.reject(new Error('busy')), { policy: fast, classify: () => ({ retryable: true }), exhausted: (_e, n) => new Error(`gave up after ${n}`) }),
      /gave up after 3/,
    );
  });
});
