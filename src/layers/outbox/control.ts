/**
 * What operators see of an outbox and do with it: its status (pending entries, their
 * bytes and age, dead letters, delivery counts), draining it now, dead letters listed and
 * queued again. The CLI, the health route and the metrics use these, through
 * {@link outboxOf}; `inspectOutbox` reads a folder another process owns, without
 * changing it.
 */
import type { Driver } from '../../core/contract.js';
import { StorageError } from '../../core/errors.js';
import type { Delivery, DeliveryOptions, Outcome } from './delivery.js';
import type { HeldUploads } from './held.js';
import { readDeadLetters, type DeadLetter, type OutboxEntries, type SpoolStep } from './entries.js';
import { outboxPaths } from './files.js';
import { readJournal, type EntryRecord } from './journal.js';

/** The disk cap of an outbox when none is given: 1 GiB. */
export const DEFAULT_MAX_BYTES = 1024 ** 3;

/** Options of `withOutbox` (and `createStorage({ outbox })`). */
export interface OutboxOptions extends DeliveryOptions {
  /** The folder of the spool and journal, on a local disk; created if missing. One process uses it at a time. */
  dir: string;
  /** The most bytes the outbox keeps (pending and dead letters); a write past it is refused with E_QUOTA_EXCEEDED. Default 1 GiB. */
  maxBytes?: number;
  /**
   * Bytes of bodies kept in memory while the backend takes them, shared by all writes in
   * progress (default 64 MiB); past it a body is copied to a temp file on the way, so a
   * write that fails can still be spooled whole.
   */
  memoryBytes?: number;
  /** Told about what recovery found and what went dead (default: console.warn). */
  onWarning?: (message: string) => void;
  /** For tests: called after each durable step of queuing a write of `key` (a crash test stops the process here). */
  onSpoolStep?: (step: SpoolStep, key: string) => void | Promise<void>;
}

/** What `status()` reports. */
export interface OutboxStatus {
  dir: string;
  /** Entries waiting for delivery. */
  pending: number;
  pendingBytes: number;
  /** Age of the oldest pending entry, in seconds (0 when none). */
  oldestAgeSeconds: number;
  /** Dead letters waiting in dead/ (see `listDead`, `retryDead`). */
  dead: number;
  deadBytes: number;
  maxBytes: number;
  /** Entries delivered (and verified) by this process. */
  delivered: number;
  /** Entries this process moved to dead/. */
  deadLettered: number;
  /** Upload sessions begun while the backend was down, held in the outbox's folder until they complete (see held.ts). */
  heldSessions: number;
  /** Internal files (tus upload records) held in the outbox's folder until the backend takes them. */
  heldFiles: number;
  /** The last failed delivery attempt, when the latest attempt failed. */
  lastError?: { code: string; message: string; at: string };
}

/** What `drain()` did. */
export interface DrainReport {
  delivered: number;
  /** Entries that went dead during the drain. */
  dead: { id: string; key: string; code: string; message: string }[];
  /** Entries whose attempt failed for now; they stay pending. */
  failed: { id: string; key: string; code: string; message: string }[];
  /** Entries still pending afterwards. */
  pending: number;
}

/** The operator's side of one outbox layer. */
export class OutboxControl {
  readonly #options: OutboxOptions;
  readonly #open: () => Promise<{ entries: OutboxEntries; delivery: Delivery; held: HeldUploads }>;
  readonly #warn: (message: string) => void;
  #lastError: OutboxStatus['lastError'];

  constructor(options: OutboxOptions, open: () => Promise<{ entries: OutboxEntries; delivery: Delivery; held: HeldUploads }>, warn: (message: string) => void) {
    this.#options = options;
    this.#open = open;
    this.#warn = warn;
  }

  /** The folder of this outbox. */
  get dir(): string {
    return this.#options.dir;
  }

  /** Counts an attempt's outcome (the delivery calls it). */
  record(entry: EntryRecord, outcome: Outcome): void {
    if (outcome.kind === 'delivered') {
      this.#lastError = undefined;
    } else if (outcome.kind === 'dead') {
      this.#warn(`outbox: ${JSON.stringify(entry.key)} (entry ${entry.id}) could not be delivered and is now a dead letter: ${outcome.code}: ${outcome.message}`);
    } else if (outcome.kind === 'retry') {
      this.#lastError = { code: outcome.code, message: outcome.message, at: new Date().toISOString() };
    }
  }

  /** The outbox's state now. Rejects when the folder could not be opened (another process owns it). */
  async status(): Promise<OutboxStatus> {
    const { entries, held } = await this.#open();
    const pending = entries.pending();
    const dead = entries.deadLetters();
    return {
      dir: this.dir,
      pending: pending.length,
      pendingBytes: entries.pendingBytes,
      oldestAgeSeconds: oldestAge(pending),
      dead: dead.length,
      deadBytes: entries.deadBytes,
      maxBytes: this.#options.maxBytes ?? DEFAULT_MAX_BYTES,
      delivered: entries.deliveredCount,
      deadLettered: entries.deadLetteredCount,
      heldSessions: held.counts.sessions,
      heldFiles: held.counts.files,
      lastError: this.#lastError,
    };
  }

  /** Attempts every pending entry now (backoff or not) and says what came of it; held internal files are delivered too. */
  async drain(): Promise<DrainReport> {
    const { entries, delivery, held } = await this.#open();
    await held.deliver().catch(() => undefined);
    const report: DrainReport = { delivered: 0, dead: [], failed: [], pending: 0 };
    for (const { entry, outcome } of await delivery.drain()) {
      if (outcome.kind === 'delivered') report.delivered++;
      else if (outcome.kind === 'dead' || outcome.kind === 'retry') report[outcome.kind === 'dead' ? 'dead' : 'failed'].push({ id: entry.id, key: entry.key, code: outcome.code, message: outcome.message });
    }
    report.pending = entries.pending().length;
    return report;
  }

  /** The dead letters, oldest first. */
  async listDead(): Promise<DeadLetter[]> {
    return (await this.#open()).entries.deadLetters();
  }

  /**
   * Queues dead letters again (all, or those `ids`), for delivery right away. One whose
   * key has a newer pending write stays dead (`skipped`), since delivering it would
   * overwrite that write. An unknown id is E_NOT_FOUND.
   */
  async retryDead(ids?: readonly string[]): Promise<{ retried: string[]; skipped: string[] }> {
    const { entries, delivery } = await this.#open();
    const result = { retried: [] as string[], skipped: [] as string[] };
    for (const id of ids ?? entries.deadLetters().map((letter) => letter.entry.id)) {
      (await entries.revive(id) ? result.retried : result.skipped).push(id);
    }
    delivery.schedule();
    return result;
  }
}

function oldestAge(pending: readonly EntryRecord[]): number {
  let oldest = Infinity;
  for (const entry of pending) oldest = Math.min(oldest, Date.parse(entry.queuedAt));
  return oldest === Infinity ? 0 : Math.max(0, (Date.now() - oldest) / 1000);
}

/**
 * The state of the outbox folder `dir` as it is on disk, read without taking it (the
 * service may be delivering it meanwhile): pending entries and dead letters. Counts of
 * deliveries are the owning process's and are not on disk.
 */
export async function inspectOutbox(dir: string): Promise<{ status: Omit<OutboxStatus, 'delivered' | 'deadLettered' | 'maxBytes' | 'lastError' | 'heldSessions' | 'heldFiles'>; pending: EntryRecord[]; dead: DeadLetter[] }> {
  const replay = await readJournal(dir);
  const pending = [...replay.live.values()];
  const dead = await readDeadLetters(await outboxPaths(dir, false), false);
  const pendingIds = new Set(pending.map((e) => e.id));
  const deadOnly = dead.filter((letter) => !pendingIds.has(letter.entry.id));
  const sum = (entries: readonly EntryRecord[]) => entries.reduce((total, e) => total + e.size, 0);
  return {
    status: { dir, pending: pending.length, pendingBytes: sum(pending), oldestAgeSeconds: oldestAge(pending), dead: deadOnly.length, deadBytes: sum(deadOnly.map((l) => l.entry)) },
    pending,
    dead: deadOnly,
  };
}

/** The outbox layer's control of a driver stack (a Storage's `driver`), found through the layers' `inner`; undefined when it has none. */
export function outboxOf(driver: Driver): OutboxControl | undefined {
  for (let d: Driver | undefined = driver; d; d = (d as { inner?: Driver }).inner) {
    const control = (d as { control?: unknown }).control;
    if (control instanceof OutboxControl) return control;
  }
  return undefined;
}

/** The error for an outbox that is not there (a CLI command without STOWAGE_OUTBOX_DIR). */
export function noOutbox(): StorageError {
  return new StorageError('E_CONFIG_INVALID', 'no outbox is configured: set STOWAGE_OUTBOX_DIR (or pass outbox: { dir } to createStorage)');
}
