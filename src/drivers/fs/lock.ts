/**
 * Per-key commit locks. A commit (two renames: data, then sidecar) is short, but
 * two of them interleaving would pair one writer's data with another's sidecar, so
 * commits on one key are serialized: by a promise chain within this process and by
 * an exclusive lock file against other processes sharing the root.
 */
import { createHash } from 'node:crypto';
import { open, stat, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { errnoCode } from './errors.js';

/** A lock file older than this belongs to a process that died mid-commit. */
export const STALE_LOCK_MS = 10_000;

/** Serializes commits per key, within and across processes. */
export class KeyLocks {
  readonly #dir: string;
  readonly #tails = new Map<string, Promise<unknown>>();

  /** `dir` holds the lock files; it must exist. */
  constructor(dir: string) {
    this.#dir = dir;
  }

  /** Runs `fn` while holding the locks of all `keys` (taken in sorted order, so two callers cannot deadlock). */
  async withLocks<T>(keys: readonly string[], fn: () => Promise<T>): Promise<T> {
    const sorted = [...new Set(keys)].sort();
    const run = async (i: number): Promise<T> => (i === sorted.length ? fn() : this.#withLock(sorted[i] as string, () => run(i + 1)));
    return run(0);
  }

  async #withLock<T>(key: string, fn: () => Promise<T>): Promise<T> {
    const previous = this.#tails.get(key) ?? Promise.resolve();
    const result = previous.then(async () => {
      const file = join(this.#dir, createHash('sha256').update(key).digest('hex').slice(0, 40));
      await acquireFile(file);
      try {
        return await fn();
      } finally {
        await unlink(file).catch(() => undefined);
      }
    });
    const tail = result.catch(() => undefined);
    this.#tails.set(key, tail);
    try {
      return await result;
    } finally {
      if (this.#tails.get(key) === tail) this.#tails.delete(key);
    }
  }
}

async function acquireFile(file: string): Promise<void> {
  for (let attempt = 0; ; attempt++) {
    try {
      await (await open(file, 'wx')).close();
      return;
    } catch (err) {
      if (errnoCode(err) !== 'EEXIST') throw err;
    }
    const age = await stat(file).then((s) => Date.now() - s.mtimeMs, () => 0);
    if (age > STALE_LOCK_MS) await unlink(file).catch(() => undefined);
    else await sleep(Math.min(1 + attempt, 20));
  }
}
