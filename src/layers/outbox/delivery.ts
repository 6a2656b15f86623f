/**
 * Background delivery of queued entries: each is written to the backend from its spooled
 * body (checked against its SHA-256 on the way), then the backend's stored object is
 * read back (stat) and only an object with the spooled SHA-256 and size counts as
 * delivered. A temporary failure retries later with exponential backoff and jitter; a
 * permanent one (access denied, bucket gone, invalid key, a condition that no longer
 * holds) makes the entry a dead letter. Writes and deliveries of one key never overlap
 * (KeyMutex), so a delivery cannot land after a newer write of its key.
 */
import { open } from 'node:fs/promises';
import { PutBody } from '../../core/body.js';
import type { Driver } from '../../core/contract.js';
import type { KeyMutex } from '../../core/concurrency.js';
import { errorMessage, isStorageError } from '../../core/errors.js';
import { statOrUndefined } from '../../core/objects.js';
import type { OutboxEntries } from './entries.js';
import type { EntryRecord } from './journal.js';

/** How delivery retries. */
/** The first retry's delay, by default. */
export const DEFAULT_INITIAL_DELAY_MS = 1000;
/** The longest delay between retries, by default. */
export const DEFAULT_MAX_DELAY_MS = 30_000;

export interface DeliveryOptions {
  /** The wait after the first failed attempt, in ms (default 1000); it doubles with each failure. */
  initialDelayMs?: number;
  /** The longest wait between attempts, in ms (default 30000). */
  maxDelayMs?: number;
  /** Deliveries at once (default 4). */
  concurrency?: number;
}

/** A failure that a later attempt may not meet: the backend down or slow (after the driver's own retries). */
export function isTemporary(err: unknown): boolean {
  return isStorageError(err) && err.retryable && (err.code === 'E_UNAVAILABLE' || err.code === 'E_TIMEOUT');
}

/** What one delivery attempt came to. */
export type Outcome = { kind: 'delivered' } | { kind: 'gone' } | { kind: 'retry'; code: string; message: string } | { kind: 'dead'; code: string; message: string };

/** How many times the backend may store other bytes than the spooled ones before the entry is dead. */
const MAX_VERIFY_FAILURES = 3;

/** Schedules and runs deliveries; see the module comment. */
export class Delivery {
  readonly #inner: Driver;
  readonly #entries: OutboxEntries;
  readonly #keys: KeyMutex;
  readonly #initialDelay: number;
  readonly #maxDelay: number;
  readonly #concurrency: number;
  readonly #onOutcome: (entry: EntryRecord, outcome: Outcome) => void;
  /** Per entry id: failed attempts, failed verifications, when the next attempt is due. */
  readonly #retries = new Map<string, { attempts: number; mismatches: number; dueAt: number }>();
  readonly #running = new Map<string, Promise<Outcome>>();
  #timer: NodeJS.Timeout | undefined;
  #closed = false;

  constructor(inner: Driver, entries: OutboxEntries, keys: KeyMutex, options: DeliveryOptions, onOutcome: (entry: EntryRecord, outcome: Outcome) => void) {
    this.#inner = inner;
    this.#entries = entries;
    this.#keys = keys;
    this.#initialDelay = options.initialDelayMs ?? DEFAULT_INITIAL_DELAY_MS;
    this.#maxDelay = options.maxDelayMs ?? DEFAULT_MAX_DELAY_MS;
    this.#concurrency = options.concurrency ?? 4;
    this.#onOutcome = onOutcome;
  }

  /** Starts the deliveries that are due, and sets a timer for the next one. */
  schedule(): void {
    if (this.#closed) return;
    clearTimeout(this.#timer);
    this.#timer = undefined;
    const now = Date.now();
    let nextDue = Infinity;
    for (const entry of this.#entries.pending()) {
      if (this.#running.size >= this.#concurrency) break;
      if (this.#running.has(entry.id)) continue;
      const dueAt = this.#retries.get(entry.id)?.dueAt ?? 0;
      if (dueAt > now) nextDue = Math.min(nextDue, dueAt);
      else void this.#start(entry);
    }
    if (nextDue !== Infinity && this.#running.size < this.#concurrency) {
      // Unref'd: pending entries are on disk, so they never keep a process alive.
      this.#timer = setTimeout(() => this.schedule(), nextDue - now).unref();
    }
  }

  /** A write was just queued because the backend failed: its first delivery waits a backoff too. */
  queued(entry: EntryRecord, code: string): void {
    this.#backOff(entry.id, { kind: 'retry', code, message: 'queued' });
    this.schedule();
  }

  /** The backend answered: attempts waiting out a backoff run now. */
  backendAnswered(): void {
    let waiting = false;
    for (const retry of this.#retries.values()) {
      if (retry.dueAt > Date.now()) waiting = true;
      retry.dueAt = 0;
    }
    if (waiting) this.schedule();
  }

  #start(entry: EntryRecord): Promise<Outcome> {
    const running = this.#running.get(entry.id);
    if (running) return running;
    const attempt = this.#attempt(entry).finally(() => {
      this.#running.delete(entry.id);
      this.schedule();
    });
    this.#running.set(entry.id, attempt);
    return attempt;
  }

  /** One attempt, under the key's mutex, then its outcome recorded. */
  async #attempt(entry: EntryRecord): Promise<Outcome> {
    const outcome = await this.#keys.run(entry.key, async (): Promise<Outcome> => {
      if (!this.#entries.isPending(entry.id)) return { kind: 'gone' };
      const result = await this.#deliver(entry).catch((err: unknown): Outcome => ({ kind: 'retry', code: isStorageError(err) ? err.code : 'E_UNAVAILABLE', message: errorMessage(err) }));
      if (result.kind === 'delivered') await this.#entries.delivered(entry);
      if (result.kind === 'dead') await this.#entries.kill(entry, result.code, result.message);
      return result;
    }).catch((err: unknown): Outcome => ({ kind: 'retry', code: 'E_UNAVAILABLE', message: `the outbox could not record the outcome: ${errorMessage(err)}` }));
    if (outcome.kind === 'retry') this.#backOff(entry.id, outcome);
    else this.#retries.delete(entry.id);
    if (outcome.kind === 'delivered') this.backendAnswered();
    this.#onOutcome(entry, outcome);
    return outcome;
  }

  #backOff(id: string, outcome: Outcome & { kind: 'retry' }): void {
    const retry = this.#retries.get(id) ?? { attempts: 0, mismatches: 0, dueAt: 0 };
    retry.attempts++;
    if (outcome.code === 'E_CHECKSUM_MISMATCH') retry.mismatches++;
    const delay = Math.min(this.#maxDelay, this.#initialDelay * 2 ** (retry.attempts - 1));
    // Full jitter on half the delay: entries that failed together do not retry together.
    retry.dueAt = Date.now() + delay / 2 + Math.random() * (delay / 2);
    this.#retries.set(id, retry);
  }

  /** Writes the entry to the backend and checks what it stored. */
  async #deliver(entry: EntryRecord): Promise<Outcome> {
    const handle = await open(this.#entries.bodyPath(entry), 'r');
    const stream = handle.createReadStream({ highWaterMark: 1024 * 1024 });
    try {
      const { ifNoneMatch, ifMatch, attributes } = entry;
      await this.#inner.put(entry.key, new PutBody(stream, { sha256: entry.sha256 }), { ...attributes, ifNoneMatch, ifMatch });
    } catch (err) {
      if (isTemporary(err)) return { kind: 'retry', code: (err as { code: string }).code, message: errorMessage(err) };
      // A condition that fails may be our own earlier attempt, stored before its answer was lost.
      const conditional = isStorageError(err, 'E_ALREADY_EXISTS') || isStorageError(err, 'E_PRECONDITION_FAILED');
      if (!conditional || !(await this.#stores(entry))) return { kind: 'dead', code: isStorageError(err) ? err.code : 'E_UNAVAILABLE', message: errorMessage(err) };
    } finally {
      stream.destroy();
      await handle.close().catch(() => undefined);
    }
    if (await this.#stores(entry)) return { kind: 'delivered' };
    const mismatches = (this.#retries.get(entry.id)?.mismatches ?? 0) + 1;
    const message = `the backend stored other bytes than the spooled ones for ${JSON.stringify(entry.key)} (verification ${mismatches} of ${MAX_VERIFY_FAILURES})`;
    return mismatches >= MAX_VERIFY_FAILURES ? { kind: 'dead', code: 'E_CHECKSUM_MISMATCH', message } : { kind: 'retry', code: 'E_CHECKSUM_MISMATCH', message };
  }

  /** True when the backend's object at the entry's key has the spooled SHA-256 and size. */
  async #stores(entry: EntryRecord): Promise<boolean> {
    const stored = await statOrUndefined(this.#inner, entry.key);
    return stored?.sha256 === entry.sha256 && stored.size === entry.size;
  }

  /** Attempts every pending entry now, backoff or not, and resolves with each outcome. */
  async drain(): Promise<{ entry: EntryRecord; outcome: Outcome }[]> {
    const results: { entry: EntryRecord; outcome: Outcome }[] = [];
    const entries = this.#entries.pending();
    let next = 0;
    const worker = async () => {
      while (next < entries.length) {
        const entry = entries[next++] as EntryRecord;
        // An attempt already running is awaited; the entry is attempted again if it is still pending.
        const running = this.#running.get(entry.id);
        let outcome = running ? await running : undefined;
        if (this.#entries.isPending(entry.id)) outcome = await this.#start(entry);
        if (outcome) results.push({ entry, outcome });
      }
    };
    await Promise.all(Array.from({ length: this.#concurrency }, worker));
    return results;
  }

  /** Stops scheduling, and waits for the deliveries in progress. */
  async close(): Promise<void> {
    this.#closed = true;
    clearTimeout(this.#timer);
    await Promise.allSettled([...this.#running.values()]);
  }
}
