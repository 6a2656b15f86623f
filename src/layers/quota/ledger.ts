/**
 * The quota layer's bookkeeping around one change of the storage: it takes the key (so no
 * other write of it through Stowage runs meanwhile), learns what the key held, reserves
 * what the change may add to every quota it touches (refused with E_QUOTA_EXCEEDED before
 * anything is stored), and afterwards settles what really changed. A failed change settles
 * what a second look at the key finds, so a write that failed after storing (a timeout
 * after the backend committed) is still counted. The store's calls are the only shared
 * state; everything else here belongs to one change.
 */
import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Driver } from '../../core/contract.js';
import { StorageError, isStorageError } from '../../core/errors.js';
import { statOrUndefined } from '../../core/objects.js';
import { isUncreatedRoot } from '../../drivers/fs/errors.js';
import type { MatchedQuota } from './rules.js';
import { itemsFor, QuotaRefused, type CounterDelta, type CounterUsage, type IndexEntry, type KeyState, type QuotaStore } from './store.js';

/** How long a write waits for another write of the same key (through another instance) before it gives up. */
const BUSY_WAIT_MS = 30_000;

/** The error for a change that does not fit a quota: E_QUOTA_EXCEEDED naming the quota, what is used and what was asked. */
export function quotaExceeded(refusal: QuotaRefused['refusal'], quota: MatchedQuota | undefined): StorageError {
  const name = quota ? `${quota.pattern === '' ? 'the storage quota' : `quota ${JSON.stringify(quota.pattern)}`}${quota.prefix !== quota.pattern ? ` (for ${quota.prefix})` : ''}` : 'a quota';
  const unit = refusal.kind === 'bytes' ? ' bytes' : ' objects';
  return new StorageError('E_QUOTA_EXCEEDED', `${name} is full: ${refusal.used + refusal.reserved} of ${refusal.limit}${unit} used or reserved, and this write needs ${refusal.asked} more; nothing was stored`, {
    details: { quota: quota?.pattern, prefix: quota?.prefix, kind: refusal.kind, limit: refusal.limit, used: refusal.used, reserved: refusal.reserved, asked: refusal.asked },
  });
}

/** What the key holds now, or null when it is missing (an fs root its first write creates holds nothing yet). */
export async function keyState(driver: Driver, key: string): Promise<KeyState> {
  try {
    const info = await statOrUndefined(driver, key);
    return info === undefined ? null : { size: info.size, etag: info.etag };
  } catch (err) {
    if (isUncreatedRoot(err)) return null;
    throw err;
  }
}

/** Whether two key states name the same object (by ETag where both know it, else by size: all the counters see). */
export function sameState(a: KeyState, b: KeyState): boolean {
  if (a === null || b === null) return a === b;
  return a.size === b.size && (a.etag === undefined || b.etag === undefined || a.etag === b.etag);
}

/** The change of each quota's counter when a key goes from `before` to `after`. */
export function deltasOf(quotas: readonly MatchedQuota[], before: KeyState, after: KeyState): CounterDelta[] {
  const bytes = (after?.size ?? 0) - (before?.size ?? 0);
  const objects = (after ? 1 : 0) - (before ? 1 : 0);
  return bytes === 0 && objects === 0 ? [] : quotas.map((q) => ({ counter: q.counter, bytes, objects }));
}

/** Runs a store call that may refuse: a QuotaRefused becomes E_QUOTA_EXCEEDED naming the quota of `quotas` it refused. */
export async function refusing<T>(quotas: readonly MatchedQuota[], call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (err) {
    if (err instanceof QuotaRefused) throw quotaExceeded(err.refusal, quotas.find((q) => q.counter === err.refusal.counter));
    throw err;
  }
}

/** One change of one key, from taking it to settling it. */
export class KeyChange {
  readonly id = randomUUID();
  readonly key: string;
  readonly quotas: readonly MatchedQuota[];
  readonly #store: QuotaStore;
  /** What the key held is asked of the store's index, not of the backend (see `QuotaStore.reserveIndexed`). */
  readonly #indexed: boolean;
  #lease: NodeJS.Timeout | undefined;
  /** What the key held when the change took it. */
  before: KeyState = null;

  constructor(store: QuotaStore, key: string, quotas: readonly MatchedQuota[], indexed = false) {
    this.#store = store;
    this.#indexed = indexed;
    this.key = key;
    this.quotas = quotas;
  }

  /**
   * Takes the key and reserves what a change to `size` bytes (`objects` new objects) may
   * add, given what the key holds: `before`, from the store's index or a stat with
   * `driver`. Another write of the key holding it (through another instance) is waited
   * for, up to BUSY_WAIT_MS.
   */
  async begin(driver: Driver, size: number, signal?: AbortSignal, objects?: number): Promise<void> {
    const started = Date.now();
    for (let wait = 5; ; wait = Math.min(wait * 2, 200)) {
      let taken: KeyState | 'busy';
      try {
        taken = await refusing(this.quotas, () => this.#take(driver, size, objects));
      } catch (err) {
        if (isStorageError(err, 'E_QUOTA_EXCEEDED')) throw err;
        // An answer that never came may still have been carried out (a store that froze):
        // let go of the key and whatever was reserved, best effort, rather than hold them
        // until the lease ends.
        await this.#store.release([this.id]).catch(() => undefined);
        throw err;
      }
      if (taken !== 'busy') {
        this.before = taken;
        break;
      }
      if (Date.now() - started > BUSY_WAIT_MS) throw new StorageError('E_UNAVAILABLE', `another write of ${JSON.stringify(this.key)} has held it for ${BUSY_WAIT_MS / 1000} s; try again`, { key: this.key });
      await sleep(wait, undefined, { signal });
    }
    this.#renewing();
  }

  /** One attempt at taking the key: what it held, or `busy`. */
  async #take(driver: Driver, size: number, objects: number | undefined): Promise<KeyState | 'busy'> {
    const reservation = { id: this.id, key: this.key, expiresAt: this.#expiry() };
    if (this.#indexed) {
      // The index is read in the reservation's own atomic step: one store call in all.
      const taken = await this.#store.reserveIndexed({ ...reservation, size, ...(objects === undefined ? {} : { objects }), counters: this.quotas });
      return taken === 'busy' ? 'busy' : taken.before;
    }
    let before = await this.#look(driver);
    for (;;) {
      if ((await this.#store.reserve({ ...reservation, before, items: itemsFor(this.quotas, before, size, objects) })) === 'busy') return 'busy';
      // A store shared by other instances: the key is looked at again once it is held, so
      // `before` cannot be an object another instance replaced meanwhile.
      if (!Number.isFinite(this.#store.leaseMs)) return before;
      const now = await this.#look(driver);
      if (sameState(now, before)) return before;
      before = now;
    }
  }

  /** Reserves `bytes` more (a stream passing what it declared); E_QUOTA_EXCEEDED when they do not fit. */
  async grow(bytes: number): Promise<void> {
    await refusing(this.quotas, () => this.#store.grow(this.id, itemsFor(this.quotas, null, bytes, 0), this.#expiry()));
  }

  /** Settles the change from `before` to `after` (and drops `alsoRelease`, a session's reservation); the touched counters' usage after. */
  async settle(after: KeyState, alsoRelease: readonly string[] = []): Promise<Map<string, CounterUsage>> {
    this.#stopRenewing();
    return this.#store.settle([this.id, ...alsoRelease], deltasOf(this.quotas, this.before, after), this.#indexEntry(after));
  }

  /** The index's new entry for the key, when the index is in use. */
  #indexEntry(after: KeyState): IndexEntry[] {
    return this.#indexed ? [{ key: this.key, size: after?.size ?? null }] : [];
  }

  /**
   * Ends a change that failed: settles what the key holds now if it differs from
   * `before` (the backend stored the write after all), else releases the reservation.
   * When the key cannot be looked at, the reservation is released: the counter may then
   * miss a write the backend stored, until the next reconcile (`onUnknown` says so).
   */
  async fail(driver: Driver, onUnknown: (message: string) => void): Promise<Map<string, CounterUsage> | undefined> {
    this.#stopRenewing();
    let now: KeyState;
    try {
      now = await keyState(driver, this.key);
    } catch (err) {
      await this.#store.release([this.id]);
      onUnknown(`a failed write of ${JSON.stringify(this.key)} could not be checked (${(err as Error).message}); its quotas are exact again after the next reconcile`);
      return undefined;
    }
    if (sameState(now, this.before)) {
      await this.#store.release([this.id]);
      return undefined;
    }
    return this.#store.settle([this.id], deltasOf(this.quotas, this.before, now), this.#indexEntry(now));
  }

  /**
   * What the key holds by a stat; when the backend cannot say now (down: an outbox below
   * may queue the write), it is taken as missing, so the write reserves and counts its
   * whole size and a new object: never less than it adds. A reconcile corrects an
   * overwrite counted so.
   */
  async #look(driver: Driver): Promise<KeyState> {
    try {
      return await keyState(driver, this.key);
    } catch (err) {
      if (err instanceof StorageError && err.retryable) return null;
      throw err;
    }
  }

  #expiry(): number {
    return Date.now() + this.#store.leaseMs;
  }

  /** Renews the lease of a shared store's reservation while the change runs. */
  #renewing(): void {
    const { leaseMs } = this.#store;
    if (!Number.isFinite(leaseMs)) return;
    this.#lease = setInterval(() => {
      this.#store.renew([this.id], this.#expiry()).catch(() => undefined);
    }, leaseMs / 3);
    this.#lease.unref();
  }

  #stopRenewing(): void {
    clearInterval(this.#lease);
    this.#lease = undefined;
  }
}
