/**
 * What operators and the service see of a quota layer, and the parts of its work that
 * are not one change: opening the store (and repairing writes a crash interrupted),
 * failing open or closed when the store is down, alerts when a quota crosses its
 * threshold or fills, status and usage, and the room left for a presigned upload.
 * `quotaOf(driver)` finds it through any stack of layers. Reconcile is in reconcile.ts.
 */
import { EventEmitter } from 'node:events';
import type { Driver } from '../../core/contract.js';
import { StorageError, isStorageError } from '../../core/errors.js';
import { deltasOf, keyState, quotaExceeded } from './ledger.js';
import { reconcileQuotas, type ReconcileReport } from './reconcile.js';
import { QuotaMatcher, type MatchedQuota, type QuotaRules } from './rules.js';
import { parseCounterId, type CounterUsage, type PendingWrite, type QuotaStore } from './store.js';

/** Options of `withQuotas` (and `createStorage({ quotas })`). */
export interface QuotaOptions {
  /** The quotas by pattern: `{ "": { maxBytes: 500e9 }, "users/*\/": { maxBytes: 1073741824, warnAt: 0.8 } }`. */
  rules: QuotaRules;
  /**
   * Where counters live: a store of yours, or built by `createStorage` (the embedded store
   * under the fs root's `.stowage/quota/`, in `dir`, or Redis with `redisUrl`). A promise
   * of one is awaited on first use.
   */
  store: QuotaStore | Promise<QuotaStore>;
  /**
   * When the store cannot be reached: false (the default) fails every metered write with
   * E_UNAVAILABLE; true lets writes through uncounted, with a warning, until it is back
   * (then run a reconcile).
   */
  failOpen?: boolean;
  /**
   * Learn what a write replaces from the store's index of key sizes rather than a `stat`
   * of the backend: no request more per write, at the cost of the index's memory (a key
   * and a size per object under a quota). `createStorage` turns it on unless told
   * otherwise. See the README's Quotas section.
   */
  index?: boolean;
  /** Told each crossing of a threshold (also emitted as `alert` on the control). */
  onAlert?: (alert: QuotaAlert) => void;
  /** Told warnings and one line per crossing (default: console.warn). */
  log?: (message: string) => void;
}

/** Where a counter stands against one of its limits. */
export type QuotaLevel = 'ok' | 'warn' | 'full';

/** A quota's counter crossing its threshold (`warn`), its limit (`full`), or back under it (`ok`). */
export interface QuotaAlert {
  pattern: string;
  prefix: string;
  kind: 'bytes' | 'objects';
  level: QuotaLevel;
  used: number;
  limit: number;
}

/** One counter as status and usage report it. */
export interface QuotaCounterReport {
  pattern: string;
  prefix: string;
  usedBytes: number;
  usedObjects: number;
  reservedBytes: number;
  reservedObjects: number;
  maxBytes?: number;
  maxObjects?: number;
  warnAt: number;
  level: QuotaLevel;
}

/** The level of `used` against `limit` with threshold `warnAt`. */
export function levelOf(used: number, limit: number | undefined, warnAt: number): QuotaLevel {
  if (limit === undefined) return 'ok';
  if (used >= limit) return 'full';
  return used >= limit * warnAt ? 'warn' : 'ok';
}

const LEVEL_RANK: Record<QuotaLevel, number> = { ok: 0, warn: 1, full: 2 };

/** The operator's side of one quota layer. */
export class QuotaControl extends EventEmitter<{ alert: [QuotaAlert] }> {
  readonly matcher: QuotaMatcher;
  /** The rules as configured. */
  readonly rules: QuotaRules;
  /** Whether writes learn what they replace from the store's index (see {@link QuotaOptions.index}). */
  readonly indexed: boolean;
  readonly #store: Promise<QuotaStore>;
  readonly #inner: Driver;
  readonly #options: QuotaOptions;
  readonly #levels = new Map<string, QuotaLevel>();
  #opening: Promise<QuotaStore> | undefined;
  #lapsedTimer: NodeJS.Timeout | undefined;
  #lastOutageWarning = 0;

  constructor(inner: Driver, options: QuotaOptions) {
    super();
    this.matcher = new QuotaMatcher(options.rules);
    this.rules = options.rules;
    this.indexed = options.index ?? false;
    this.#store = Promise.resolve(options.store);
    // A store that cannot be made fails the calls that need it, not an unhandled rejection.
    this.#store.catch(() => undefined);
    this.#inner = inner;
    this.#options = options;
  }

  /** Told warnings (a failed write that could not be checked, an outage when failing open). */
  readonly warn = (message: string): void => {
    (this.#options.log ?? console.warn)(message);
  };

  /**
   * The store, opened once (its journal replayed, interrupted writes repaired). Resolves
   * undefined when it cannot be reached and the layer fails open.
   */
  async open(): Promise<QuotaStore | undefined> {
    this.#opening ??= (async () => {
      const store = await this.#store;
      const pending = await store.open();
      await this.#repair(store, pending);
      for (const [counter, usage] of await store.read()) this.#levelsOf(counter, usage, false);
      if (Number.isFinite(store.leaseMs)) {
        this.#lapsedTimer = setInterval(() => {
          store.takeLapsedWrites().then((lapsed) => this.#repair(store, lapsed)).catch(() => undefined);
        }, store.leaseMs / 2);
        this.#lapsedTimer.unref();
      }
      return store;
    })();
    // A failed open is tried again by the next call (Redis may be back).
    const opening = this.#opening;
    opening.catch(() => {
      if (this.#opening === opening) this.#opening = undefined;
    });
    const store = await this.guard(() => opening);
    return store === false ? undefined : store;
  }

  /**
   * Runs a store call: an outage (E_UNAVAILABLE from the store) rejects, or with
   * `failOpen` resolves false after a warning (at most one a minute).
   */
  async guard<T>(call: () => Promise<T>): Promise<T | false> {
    try {
      return await call();
    } catch (err) {
      if (!this.#options.failOpen || !isStorageError(err, 'E_UNAVAILABLE')) throw err;
      if (Date.now() - this.#lastOutageWarning > 60_000) {
        this.#lastOutageWarning = Date.now();
        this.warn(`quota store unavailable (${err.message}); failing open: writes go through uncounted until it is back, then run \`stowage quota reconcile\``);
      }
      return false;
    }
  }

  /** Settles what crashed (or lapsed) writes did: each key as it is now against what it held before. */
  async #repair(store: QuotaStore, pending: readonly PendingWrite[]): Promise<void> {
    for (const write of pending) {
      const now = await keyState(this.#inner, write.key);
      this.observe(await store.settle([write.id], deltasOf(this.matcher.match(write.key), write.before, now), this.indexed ? [{ key: write.key, size: now?.size ?? null }] : []));
    }
    if (pending.length > 0) this.warn(`quota: repaired the counters of ${pending.length} write(s) a stopped process left unfinished`);
  }

  /** Looks at counters after a change: a level crossed is an alert and one log line. */
  observe(usage: Map<string, CounterUsage> | undefined | false): void {
    if (!usage) return;
    for (const [counter, u] of usage) this.#levelsOf(counter, u, true);
  }

  #levelsOf(counter: string, usage: CounterUsage, alert: boolean): void {
    const { pattern, prefix } = parseCounterId(counter);
    const limit = this.matcher.limitOf(pattern);
    if (limit === undefined) return;
    for (const kind of ['bytes', 'objects'] as const) {
      const max = kind === 'bytes' ? limit.maxBytes : limit.maxObjects;
      if (max === undefined) continue;
      const used = kind === 'bytes' ? usage.bytes : usage.objects;
      const level = levelOf(used, max, limit.warnAt);
      const id = `${counter}\u001f${kind}`;
      const was = this.#levels.get(id) ?? 'ok';
      if (level === 'ok') this.#levels.delete(id);
      else this.#levels.set(id, level);
      if (!alert || level === was) continue;
      const event: QuotaAlert = { pattern, prefix, kind, level, used, limit: max };
      const where = pattern === prefix ? JSON.stringify(pattern) : `${JSON.stringify(pattern)} for ${prefix}`;
      const verb = LEVEL_RANK[level] > LEVEL_RANK[was] ? (level === 'full' ? 'is full' : `passed ${Math.round(limit.warnAt * 100)} %`) : `is back ${level === 'ok' ? 'under its threshold' : 'under its limit'}`;
      this.warn(`quota ${where} ${verb}: ${used} of ${max} ${kind}`);
      this.#options.onAlert?.(event);
      this.emit('alert', event);
    }
  }

  /** Every counter the store holds, with its limits and level. */
  async counters(): Promise<QuotaCounterReport[]> {
    const store = await this.#required();
    return [...(await store.read())].flatMap(([counter, usage]) => this.#report(counter, usage));
  }

  /** The quotas a folder `prefix` lies in (`users/alice/` -> that folder's and the whole storage's), with usage. */
  async usage(prefix: string): Promise<QuotaCounterReport[]> {
    const store = await this.#required();
    const quotas = this.matcher.covering(prefix);
    const usage = await store.read(quotas.map((q) => q.counter));
    return quotas.flatMap((q) => this.#report(q.counter, usage.get(q.counter) as CounterUsage));
  }

  #report(counter: string, u: CounterUsage): QuotaCounterReport[] {
    const { pattern, prefix } = parseCounterId(counter);
    const limit = this.matcher.limitOf(pattern);
    if (limit === undefined) return [];
    const level = [levelOf(u.bytes, limit.maxBytes, limit.warnAt), levelOf(u.objects, limit.maxObjects, limit.warnAt)].sort((a, b) => LEVEL_RANK[b] - LEVEL_RANK[a])[0] as QuotaLevel;
    return [{ pattern, prefix, usedBytes: u.bytes, usedObjects: u.objects, reservedBytes: u.reservedBytes, reservedObjects: u.reservedObjects, ...(limit.maxBytes === undefined ? {} : { maxBytes: limit.maxBytes }), ...(limit.maxObjects === undefined ? {} : { maxObjects: limit.maxObjects }), warnAt: limit.warnAt, level }];
  }

  /** Counters past their threshold or full, for health (`degraded`). */
  async pastThreshold(): Promise<QuotaCounterReport[]> {
    return (await this.counters()).filter((c) => c.level !== 'ok');
  }

  /**
   * The bytes an upload of `key` may add now (the least room among its byte quotas),
   * 0 when an object quota is full; undefined when no quota limits it.
   */
  async room(key: string): Promise<number | undefined> {
    return (await this.#tightest(key))?.room;
  }

  /** The quota of `key` with the least room, and that room. */
  async #tightest(key: string): Promise<{ room: number; quota: MatchedQuota; usage: CounterUsage; kind: 'bytes' | 'objects' } | undefined> {
    const quotas = this.matcher.match(key);
    if (quotas.length === 0) return undefined;
    const store = await this.open();
    if (store === undefined) return undefined;
    const usage = await store.read(quotas.map((q) => q.counter));
    let tightest: { room: number; quota: MatchedQuota; usage: CounterUsage; kind: 'bytes' | 'objects' } | undefined;
    for (const quota of quotas) {
      const u = usage.get(quota.counter) as CounterUsage;
      if (quota.maxObjects !== undefined && Math.max(0, u.objects) + u.reservedObjects >= quota.maxObjects) return { room: 0, quota, usage: u, kind: 'objects' };
      if (quota.maxBytes === undefined) continue;
      const room = Math.max(0, quota.maxBytes - Math.max(0, u.bytes) - u.reservedBytes);
      if (tightest === undefined || room < tightest.room) tightest = { room, quota, usage: u, kind: 'bytes' };
    }
    return tightest;
  }

  /**
   * Refuses a presigned upload of `size` bytes to `key` that cannot fit now (E_QUOTA_EXCEEDED),
   * or, with `sizeRequired` (a link the backend takes, never seen here again), of no stated
   * size under a quota (E_INVALID_ARGUMENT: nothing could bound it).
   */
  async checkUpload(key: string, size: number | undefined, sizeRequired = true): Promise<void> {
    const tightest = await this.#tightest(key);
    if (tightest === undefined || (size === undefined && !sizeRequired)) return;
    if (size === undefined) throw new StorageError('E_INVALID_ARGUMENT', `${JSON.stringify(key)} is under a quota: a signed upload link needs contentLength (or maxSize) so the quota can bound it`, { key });
    const { room, quota, usage, kind } = tightest;
    if (size <= room && room > 0) return;
    const used = kind === 'bytes' ? Math.max(0, usage.bytes) : Math.max(0, usage.objects);
    const reserved = kind === 'bytes' ? usage.reservedBytes : usage.reservedObjects;
    const limit = (kind === 'bytes' ? quota.maxBytes : quota.maxObjects) ?? 0;
    throw quotaExceeded({ counter: quota.counter, kind, limit, used, reserved, asked: kind === 'bytes' ? size : 1 }, quota);
  }

  /** The opened store, for reports: E_UNAVAILABLE when it cannot be reached, even failing open. */
  async #required(): Promise<QuotaStore> {
    const store = await this.open();
    if (store === undefined) throw new StorageError('E_UNAVAILABLE', 'the quota store is unavailable');
    return store;
  }

  /**
   * Recomputes every quota's usage from a listing and repairs the counters (unless
   * `dryRun`); see reconcile.ts for what writes during it mean.
   */
  reconcile(opts: { dryRun?: boolean; signal?: AbortSignal } = {}): Promise<ReconcileReport> {
    return reconcileQuotas(this.#inner, this, opts);
  }

  /** The kind of store (`embedded`, `redis`), once it is made. */
  async storeKind(): Promise<string> {
    return (await this.#store).kind;
  }

  /** The store as made, not necessarily opened (the CLI reads an embedded one read-only beside a running service). */
  storeOf(): Promise<QuotaStore> {
    return this.#store;
  }

  /**
   * The size cap of a POST form to `key` asking for `maxSize`: the room left where a
   * quota limits it (so the backend itself refuses more), E_QUOTA_EXCEEDED when none is left.
   */
  async formMaxSize(key: string, maxSize: number | undefined): Promise<number | undefined> {
    const room = await this.room(key);
    if (room === undefined) return maxSize;
    if (room === 0) await this.checkUpload(key, 1);
    return Math.min(maxSize ?? room, room);
  }

  /** Stops the lapsed-write sweep and closes the store. */
  async close(): Promise<void> {
    clearInterval(this.#lapsedTimer);
    if (this.#opening) await (await this.#store).close();
  }
}

/** The quota control of the first quota layer in a stack, or undefined. */
export function quotaOf(driver: Driver): QuotaControl | undefined {
  for (let d: Driver | undefined = driver; d; d = (d as { inner?: Driver }).inner) {
    const control = (d as { control?: unknown }).control;
    if (control instanceof QuotaControl) return control;
  }
  return undefined;
}
