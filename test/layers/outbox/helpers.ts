/**
 * Shared pieces of the outbox tests: a backend that can be switched down (every call
 * fails with E_UNAVAILABLE, as after the driver's own retries), temp folders, and a wait
 * for a condition that polls instead of assuming how fast the machine is.
 */
import { createHash } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { after } from 'node:test';
import { DriverLayer, StorageError, type AsyncDriverOperation, type Driver } from '../../../src/index.js';

/** A layer whose calls fail with `code` while `down` is set (close excepted). */
export class Switch extends DriverLayer {
  down = false;
  code: 'E_UNAVAILABLE' | 'E_TIMEOUT' | 'E_ACCESS_DENIED' = 'E_UNAVAILABLE';
  calls: AsyncDriverOperation[] = [];

  constructor(inner: Driver) {
    super(inner);
  }

  protected override around<T>(operation: AsyncDriverOperation, run: () => Promise<T>): Promise<T> {
    this.calls.push(operation);
    if (this.down && operation !== 'close') return Promise.reject(new StorageError(this.code, `the backend is down (${operation})`));
    return run();
  }
}

/** A new temp folder, removed after the test file. */
export async function tempDir(name: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), `stowage-${name}-`));
  after(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

/** Waits until `check` returns true, polling; fails after `timeoutMs` (generous: the machine is shared). */
export async function waitFor(check: () => boolean | Promise<boolean>, what: string, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

export function sha256(bytes: Uint8Array | string): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/** Fast retries, so tests that wait for delivery do not wait out real backoffs. */
export const FAST = { initialDelayMs: 20, maxDelayMs: 200, onWarning: () => undefined } as const;

/** The body the crash tests write at key index `n`: its own bytes and size (some kept in memory, some past memoryBytes in a temp file). */
export function crashBody(n: number): Buffer {
  const size = n % 3 === 0 ? 100_000 + n : 500 + n;
  const bytes = Buffer.alloc(size);
  for (let i = 0; i < size; i++) bytes[i] = (n * 31 + i) % 256;
  return bytes;
}
