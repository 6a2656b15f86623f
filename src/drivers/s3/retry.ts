/**
 * Retries of temporary failures: exponential backoff with full jitter, a longer base
 * for throttling, a cap, and the server's Retry-After when it sends one. Only errors
 * that are `retryable` are retried, and only when the caller says the request can be
 * sent again (its body is replayable).
 *
 * The S3 driver applies it per request (each part of a multipart upload is retried on
 * its own), the only level where replayability is known; that is why it is no layer
 * around a whole Driver, where a consumed body stream could not be sent again.
 */
import { setTimeout as sleep } from 'node:timers/promises';

/** How retries are spaced. */
export interface RetryPolicy {
  /** Attempts in all, the first included (default 3). 1 turns retries off. */
  maxAttempts: number;
  /** Base of the exponential backoff in ms (default 100). */
  baseDelayMs: number;
  /** Base for throttling errors (SlowDown, 503) in ms (default 500). */
  throttleBaseDelayMs: number;
  /** Upper bound of any one wait in ms (default 20000). */
  maxDelayMs: number;
}

/** The defaults: 3 attempts, 100 ms base, 500 ms when throttled, 20 s cap. */
export const DEFAULT_RETRY_POLICY: RetryPolicy = { maxAttempts: 3, baseDelayMs: 100, throttleBaseDelayMs: 500, maxDelayMs: 20_000 };

/** What a failed attempt tells the retry loop. */
export interface RetryVerdict {
  /** Worth another attempt (a temporary failure). */
  retryable: boolean;
  /** The server asked us to slow down. */
  throttled?: boolean;
  /** Seconds the server asked us to wait (Retry-After). */
  retryAfterSeconds?: number;
}

/**
 * The wait before attempt `attempt + 1` (attempt counts from 1): full jitter over
 * min(cap, base * 2^(attempt-1)), or the server's Retry-After when longer, capped.
 */
export function backoffDelay(policy: RetryPolicy, attempt: number, verdict: RetryVerdict, random: () => number = Math.random): number {
  const base = verdict.throttled ? policy.throttleBaseDelayMs : policy.baseDelayMs;
  const ceiling = Math.min(policy.maxDelayMs, base * 2 ** (attempt - 1));
  const jittered = random() * ceiling;
  const asked = verdict.retryAfterSeconds !== undefined ? verdict.retryAfterSeconds * 1000 : 0;
  return Math.min(policy.maxDelayMs, Math.max(jittered, asked));
}

/** Options of {@link withRetry}. */
export interface WithRetryOptions {
  policy: RetryPolicy;
  /** Classifies an error from an attempt. */
  classify: (err: unknown) => RetryVerdict;
  /** False when the request cannot be sent again (a consumed stream body). */
  replayable?: boolean;
  /** Stops waiting and retrying. */
  signal?: AbortSignal;
  /** Called before each wait, for logs and metrics. */
  onRetry?: (info: { attempt: number; delayMs: number; error: unknown }) => void;
  /** Turns the last error of a temporary failure that ran out of attempts into the error thrown. */
  exhausted?: (err: unknown, attempts: number) => unknown;
}

/**
 * Runs `attempt` until it succeeds, fails with a permanent error, or runs out of
 * attempts. When attempts run out on a temporary error, `exhausted` may turn the last
 * error into the one thrown (e.g. to say "after 3 attempts").
 */
export async function withRetry<T>(attempt: (n: number) => Promise<T>, opts: WithRetryOptions): Promise<T> {
  const attempts = opts.replayable === false ? 1 : Math.max(1, opts.policy.maxAttempts);
  for (let n = 1; ; n++) {
    try {
      return await attempt(n);
    } catch (err) {
      const verdict = opts.classify(err);
      if (!verdict.retryable || opts.signal?.aborted) throw err;
      if (n >= attempts) throw opts.exhausted ? opts.exhausted(err, n) : err;
      const delayMs = backoffDelay(opts.policy, n, verdict);
      opts.onRetry?.({ attempt: n, delayMs, error: err });
      await sleep(delayMs, undefined, { signal: opts.signal });
    }
  }
}
