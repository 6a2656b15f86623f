/**
 * A bounded queue of renders. Decoding an image takes memory in proportion to its pixels
 * and a core for its time, so a burst of first requests for variants must not all run at
 * once: `concurrency` renders run, up to `maxWaiting` more wait their turn, and one past
 * that is refused at once with a retryable E_UNAVAILABLE (the service answers 503 with
 * Retry-After) rather than queued without bound.
 */
import { StorageError } from '../core/errors.js';

/** Runs at most `concurrency` tasks at a time, with at most `maxWaiting` waiting. */
export class WorkQueue {
  readonly concurrency: number;
  readonly maxWaiting: number;
  #active = 0;
  readonly #waiting: (() => void)[] = [];

  constructor(concurrency: number, maxWaiting: number) {
    if (!Number.isInteger(concurrency) || concurrency < 1) throw new StorageError('E_CONFIG_INVALID', `image concurrency must be a whole number >= 1 (got ${concurrency})`);
    if (!Number.isInteger(maxWaiting) || maxWaiting < 0) throw new StorageError('E_CONFIG_INVALID', `the image queue length must be a whole number >= 0 (got ${maxWaiting})`);
    this.concurrency = concurrency;
    this.maxWaiting = maxWaiting;
  }

  /** Tasks running now. */
  get active(): number {
    return this.#active;
  }

  /** Tasks waiting for a turn. */
  get waiting(): number {
    return this.#waiting.length;
  }

  /**
   * Runs `task` once a turn is free, and resolves or rejects as it does. Rejects at once,
   * without running it, with E_UNAVAILABLE (retryable) when `maxWaiting` tasks already wait.
   */
  async run<T>(task: () => Promise<T>): Promise<T> {
    if (this.#active >= this.concurrency) {
      if (this.#waiting.length >= this.maxWaiting) {
        throw new StorageError('E_UNAVAILABLE', `too many images are being rendered (${this.#active} running, ${this.#waiting.length} waiting); try again shortly`, { retryable: true, details: { reason: 'busy' } });
      }
      // The turn is handed over by the task that ends (see below): #active stays counted.
      await new Promise<void>((resolve) => this.#waiting.push(resolve));
    } else {
      this.#active += 1;
    }
    try {
      return await task();
    } finally {
      const next = this.#waiting.shift();
      if (next) next();
      else this.#active -= 1;
    }
  }
}
