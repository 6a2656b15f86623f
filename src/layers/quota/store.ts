/**
 * The contract of a quota store: where the quota layer keeps its counters (bytes and
 * objects used per quota) and its reservations (bytes and objects promised to writes and
 * upload sessions in progress). Two implementations: the embedded store (a journal in a
 * local folder, one process) and the Redis store (shared by every instance). Each
 * operation is atomic: two callers racing for the last bytes of a quota cannot both get
 * them, because the check (used + reserved + asked <= limit) and the reservation happen
 * in one step.
 *
 * A counter is named by its id (see `counterId`): a quota pattern and the prefix it
 * matched, e.g. pattern `users/*\/` and prefix `users/alice/`. Counters that were never
 * touched read as zero. Limits are not stored: each call that can be refused carries the
 * limits of the counters it touches, so a change of configuration applies at once.
 */

/** Bytes and objects: a change of a counter (negative for a delete) or an amount reserved. */
export interface CounterDelta {
  /** The counter's id (`counterId(pattern, prefix)`). */
  counter: string;
  bytes: number;
  objects: number;
}

/** A counter's limits, as the quota configuration says (absent: no limit of that kind). */
export interface CounterLimits {
  maxBytes?: number;
  maxObjects?: number;
}

/** What one item of a reservation asks of one counter (amounts are >= 0). */
export type ReservationItem = CounterDelta & CounterLimits;

/**
 * What a key held when a write of it started: its size (and ETag when a stat told it; the
 * store's index knows sizes only), or null when it was missing.
 */
export type KeyState = { size: number; etag?: string } | null;

/** A key's size for the store's index (see `QuotaStore.reserveIndexed`); null: the key is gone. */
export interface IndexEntry {
  key: string;
  size: number | null;
}

/** A reservation to take. */
export interface ReservationRequest {
  /** Unique id, chosen by the caller (a random UUID, or `session:<id>` for an upload session). */
  id: string;
  /**
   * The key a write of one object holds exclusively until it is settled or released: a
   * second keyed reservation of the same key answers `busy` meanwhile. Absent for an
   * upload session's reservation, which holds no key (the write that completes the
   * session takes its own keyed reservation).
   */
  key?: string;
  /** What the key held when the write started: how a crashed write is repaired (see `PendingWrite`). */
  before?: KeyState;
  /**
   * When the reservation lapses (epoch ms) if it is neither settled, released nor
   * renewed: lapsed reservations stop counting. A session's is its expiry; a write's a
   * lease its process renews while it runs (`QuotaStore.leaseMs`).
   */
  expiresAt: number;
  items: ReservationItem[];
}

/** A keyed reservation whose process died before settling it: the write may or may not have happened. */
export interface PendingWrite {
  id: string;
  key: string;
  before: KeyState;
  /** The counters it reserved, with what it reserved: the counters the key's write touches. */
  items: ReservationItem[];
}

/** A counter's usage: settled bytes and objects, plus what live reservations hold. */
export interface CounterUsage {
  bytes: number;
  objects: number;
  reservedBytes: number;
  reservedObjects: number;
}

/** The result of `reserve`: taken, or the key is held by another write (retry shortly). */
export type ReserveOutcome = 'ok' | 'busy';

/** A counter a write touches, with its limits: what `reserveIndexed` reserves amounts of. */
export type CounterWithLimits = CounterLimits & { counter: string };

/**
 * A keyed reservation whose amounts follow from what the store's index holds for `key`
 * (see `QuotaStore.reserveIndexed`).
 */
export interface IndexedReservationRequest {
  /** As for `ReservationRequest`. */
  id: string;
  key: string;
  expiresAt: number;
  /** The size the key may have once written: the reservation is what it adds to the size indexed (all of it for a key the index lacks). */
  size: number;
  /** The objects it reserves; by default 1 for a key the index lacks, else 0. */
  objects?: number;
  counters: readonly CounterWithLimits[];
}

/** The result of `reserveIndexed`: taken, with what the index held for the key, or `busy` as for `reserve`. */
export type IndexedReserveOutcome = { before: KeyState } | 'busy';

/** What a change of a key from `before` to a size of `size` may add to each counter: the items of its reservation. */
export function itemsFor(counters: readonly CounterWithLimits[], before: KeyState, size: number, objects = before ? 0 : 1): ReservationItem[] {
  const bytes = Math.max(0, size - (before?.size ?? 0));
  return counters.map((q) => ({ counter: q.counter, bytes, objects, ...(q.maxBytes === undefined ? {} : { maxBytes: q.maxBytes }), ...(q.maxObjects === undefined ? {} : { maxObjects: q.maxObjects }) }));
}

/**
 * A reservation refused: `counter` would pass `limit` (in `kind`), which holds `used`
 * settled plus `reserved` by others, and the request asked `asked`.
 */
export interface QuotaRefusal {
  counter: string;
  kind: 'bytes' | 'objects';
  limit: number;
  used: number;
  reserved: number;
  asked: number;
}

/** Thrown by `reserve` and `grow` when a limit would be passed; nothing was reserved by that call. */
export class QuotaRefused extends Error {
  readonly refusal: QuotaRefusal;

  constructor(refusal: QuotaRefusal) {
    super(`quota ${refusal.counter} would pass its ${refusal.kind} limit`);
    this.refusal = refusal;
  }
}

/** Where the quota layer keeps counters and reservations. */
export interface QuotaStore {
  /** `embedded` or `redis`, for status and health. */
  readonly kind: string;
  /**
   * How long a write's reservation lives unrenewed, in ms; the layer renews it at a third
   * of that while the write runs. The embedded store, whose writes end with its process,
   * says Infinity.
   */
  readonly leaseMs: number;

  /**
   * Loads the counters (replaying what a crash left) and returns the keyed reservations of
   * writes that a dead process left unsettled, for the layer to repair: it stats each key
   * and settles the difference from `before`. They keep holding their key until then.
   */
  open(): Promise<PendingWrite[]>;

  /**
   * Takes a reservation atomically: checks for each item that settled + reserved + asked
   * stays within the item's limits (a negative counter counts as 0), and records it.
   * Rejects with {@link QuotaRefused} (nothing recorded) when one would pass; resolves
   * `busy` (nothing recorded) when `key` is held by another live reservation. An id
   * already held is replaced.
   */
  reserve(request: ReservationRequest): Promise<ReserveOutcome>;

  /**
   * `reserve` of a keyed write whose `before` is what the store's index holds for the key,
   * read in the same atomic step, so no write of the key through another instance can
   * come between (one round trip for a shared store, where a separate lookup and a look
   * again once the key is held would be three). The index is what `settle` recorded (and
   * `replaceIndex` rebuilt from a listing): a key written around Stowage is missing from it
   * until a reconcile, so its first write through Stowage reserves as for a new object.
   * Refuses and answers `busy` as `reserve` does; resolves with the `before` it recorded.
   */
  reserveIndexed(request: IndexedReservationRequest): Promise<IndexedReserveOutcome>;

  /**
   * Adds to a live reservation (a stream passing what it reserved, a session whose size
   * becomes known), with the same atomic check as `reserve`; QuotaRefused leaves the
   * reservation as it was. An unknown or lapsed id is reserved anew with these items.
   */
  grow(id: string, items: ReservationItem[], expiresAt: number): Promise<void>;

  /** Moves the expiry of live reservations (a write's lease); unknown ids are ignored. */
  renew(ids: readonly string[], expiresAt: number): Promise<void>;

  /**
   * Applies `deltas` to the counters (settled usage), records `index` (each key's size
   * now, null for gone), drops the reservations `ids` (and the key they hold) in the same
   * step, and returns the usage of the deltas' counters afterwards, for alerts (a store
   * that applies several settles in one step may add the counters of the others). Unknown
   * ids are ignored, so settling twice applies the deltas twice: callers settle once.
   */
  settle(ids: readonly string[], deltas: readonly CounterDelta[], index?: readonly IndexEntry[]): Promise<Map<string, CounterUsage>>;

  /** Reconcile's rebuild of the index: it holds exactly `entries` afterwards (every metered key a listing found). */
  replaceIndex(entries: ReadonlyMap<string, number>): Promise<void>;

  /** Drops reservations without changing a counter (a write that failed, an abort). Unknown ids are ignored. */
  release(ids: readonly string[]): Promise<void>;

  /**
   * Usage of the given counters (every counter the store knows when omitted), lapsed
   * reservations left out. Counters never touched are absent from the map when listing
   * all, and zero when asked for by id.
   */
  read(counters?: readonly string[]): Promise<Map<string, CounterUsage>>;

  /**
   * Reconcile's repair: sets the settled usage of every counter of `counters` to what a
   * listing found (reservations stay), and zeroes the other counters whose id starts
   * with one of `scopes` (counters of the quotas reconciled that the listing no longer
   * found).
   */
  reset(counters: ReadonlyMap<string, { bytes: number; objects: number }>, scopes: readonly string[]): Promise<void>;

  /**
   * Keyed reservations that lapsed because their process died (Redis: its lease ran out),
   * taken off the store for this caller to repair as `open`'s are; each is handed to one
   * caller only. The embedded store has none after `open`.
   */
  takeLapsedWrites(): Promise<PendingWrite[]>;

  /** Releases what the store holds (a file, a connection). */
  close(): Promise<void>;
}

/** The id of the counter of quota `pattern` for the prefix it matched: `<pattern>\u001f<prefix>`. */
export function counterId(pattern: string, prefix: string): string {
  return `${pattern}\u001f${prefix}`;
}

/** The pattern and prefix of a counter id. */
export function parseCounterId(id: string): { pattern: string; prefix: string } {
  const at = id.indexOf('\u001f');
  return at < 0 ? { pattern: id, prefix: id } : { pattern: id.slice(0, at), prefix: id.slice(at + 1) };
}
