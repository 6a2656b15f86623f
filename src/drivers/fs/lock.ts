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
import { KeyMutex } from '../../core/concurrency.js';
import { errnoCode } from './errors.js';

/** A lock file older than this belongs to a process that died mid-commit. */
export const STALE_LOCK_MS = 10_000;

/** Serializes commits per key, within and across processes. */
export class KeyLocks {
  readonly #dir: string;
  /** Orders this process's callers per key, before the lock file orders processes. */
  readonly #mutex = new KeyMutex();

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

  /**
   * Runs `fn` under the key's lock only if no one holds it right now; resolves
   * undefined, without running `fn`, when someone does. For a commit that already holds
   * another key's lock and must not wait (waiting there could deadlock).
   */
  async tryWithLock<T>(key: string, fn: () => Promise<T>): Promise<{ value: T } | undefined> {
    if (this.#mutex.busy(key)) return undefined;
    return this.#mutex.run(key, async () => {
      const file = this.#file(key);
      if (!(await tryAcquireFile(file))) return undefined;
      try {
        return { value: await fn() };
      } finally {
        await unlink(file).catch(() => undefined);
      }
    });
  }

  #file(key: string): string {
    return join(this.#dir, createHash('sha256').update(key).digest('hex').slice(0, 40));
  }

  async #withLock<T>(key: string, fn: () => Promise<T>): Promise<T> {
    return this.#mutex.run(key, async () => {
      const file = this.#file(key);
      await acquireFile(file);
      try {
        return await fn();
      } finally {
        await unlink(file).catch(() => undefined);
      }
    });
  }
}

/** Creates the lock file; false when it exists (after removing it once if its owner died). */
async function tryAcquireFile(file: string): Promise<boolean> {
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      await (await open(file, 'wx')).close();
      return true;
    } catch (err) {
      if (errnoCode(err) !== 'EEXIST') throw err;
    }
    const age = await stat(file).then((s) => Date.now() - s.mtimeMs, () => 0);
    if (age <= STALE_LOCK_MS) return false;
    await unlink(file).catch(() => undefined);
  }
  return false;
}

async function acquireFile(file: string): Promise<void> {
  for (let attempt = 0; !(await tryAcquireFile(file)); attempt++) await sleep(Math.min(1 + attempt, 20));
}
