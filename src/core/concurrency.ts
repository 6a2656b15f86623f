/** Bounded concurrency, for work that fans out over many items (HEADs of a listing, parts of a copy). */

/**
 * Runs `task` for every item, at most `limit` at a time, and returns the results in the
 * items' order. The first failure rejects (tasks already started still finish).
 */
export async function mapConcurrently<T, R>(items: readonly T[], limit: number, task: (item: T, index: number) => Promise<R>): Promise<R[]> {
  const results = new Array<R>(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const index = next++;
      results[index] = await task(items[index] as T, index);
    }
  };
  await Promise.all(Array.from({ length: Math.min(Math.max(1, limit), items.length) }, worker));
  return results;
}

/**
 * Runs `task` for every item of an async stream (a listing of any length), at most
 * `limit` at a time, pulling items only as workers free up so memory stays bounded.
 * Stops taking items once `stop()` returns true. The first failure rejects.
 */
export async function forEachConcurrently<T>(items: AsyncIterable<T>, limit: number, task: (item: T) => Promise<void>, stop: () => boolean = () => false): Promise<void> {
  const iterator = items[Symbol.asyncIterator]();
  const worker = async () => {
    while (!stop()) {
      // Concurrent next() calls on one async generator are queued by the generator itself.
      const step = await iterator.next();
      if (step.done) return;
      await task(step.value);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, limit) }, worker));
}

/** Runs tasks of one key one at a time, in the order they arrive (within this process). */
export class KeyMutex {
  readonly #tails = new Map<string, Promise<unknown>>();

  /** True while a task of `key` runs or waits. */
  busy(key: string): boolean {
    return this.#tails.has(key);
  }

  /** Runs `fn` once the tasks of `key` before it have settled; queued at once, so later callers wait behind it. */
  async run<T>(key: string, fn: () => Promise<T>): Promise<T> {
    const result = (this.#tails.get(key) ?? Promise.resolve()).then(fn);
    const tail = result.catch(() => undefined);
    this.#tails.set(key, tail);
    try {
      return await result;
    } finally {
      if (this.#tails.get(key) === tail) this.#tails.delete(key);
    }
  }
}

/**
 * Work left running after the call that started it returned (a temp file's removal, a
 * cache's write): each task is kept until it settles, its failure ignored (it was started
 * as one that may fail), and `settled()` waits for every task started so far.
 */
export class BackgroundTasks {
  readonly #tasks = new Set<Promise<void>>();

  /** Keeps `task` until it settles. */
  add(task: Promise<unknown>): void {
    const settled: Promise<void> = task.then(
      () => undefined,
      () => undefined,
    );
    this.#tasks.add(settled);
    void settled.finally(() => this.#tasks.delete(settled));
  }

  /** Resolves once every task added so far has settled. */
  async settled(): Promise<void> {
    await Promise.all([...this.#tasks]);
  }
}
