/**
 * The Redis quota store: counters and reservations shared by every service instance, so
 * a quota holds across all of them. Each operation is one Lua script (redis-scripts.ts
 * has the key layout), hence atomic: two instances racing for the last bytes of a quota
 * cannot both get them. Expiry follows the callers' clocks (each call passes Date.now()),
 * and a write's reservation lives `leaseMs` unrenewed: when its process dies, it lapses at
 * the end of its lease and comes out of `takeLapsedWrites` for one instance to repair.
 */
import { StorageError } from '../../core/errors.js';
import { RedisConnection, type LuaReply, type LuaScript } from './redis-connection.js';
import { GROW, READ, RENEW, RESERVE, RESERVE_INDEXED, RESET, SCRIPTS, SETTLE, TAKE_LAPSED } from './redis-scripts.js';
import {
  QuotaRefused,
  type CounterDelta,
  type CounterUsage,
  type IndexedReservationRequest,
  type IndexedReserveOutcome,
  type IndexEntry,
  type KeyState,
  type PendingWrite,
  type QuotaStore,
  type ReservationItem,
  type ReservationRequest,
  type ReserveOutcome,
} from './store.js';

/** Options of {@link RedisQuotaStore}. */
export interface RedisQuotaStoreOptions {
  /** `redis://[user:password@]host[:port][/db]` (or `rediss://` for TLS). */
  url: string;
  /** Prefix of every key the store writes, so several deployments can share a Redis. */
  namespace?: string;
  /** How long a write's reservation lives unrenewed, in ms. */
  leaseMs?: number;
}

/** Lapsed writes taken per script run: the store runs it again until none are left. */
const TAKE_BATCH = 100;
/** A settle (or release) waiting to go out: its arguments and its caller. */
interface QueuedSettle {
  ids: readonly string[];
  deltas: string[];
  index: string[];
  resolve(usage: Map<string, CounterUsage>): void;
  reject(err: unknown): void;
}

/** A {@link QuotaStore} in Redis, shared by every instance that names the same URL and namespace. */
export class RedisQuotaStore implements QuotaStore {
  readonly kind = 'redis';
  readonly leaseMs: number;
  private readonly namespace: string;
  private readonly redis: RedisConnection;
  /** Settles and releases of this turn of the event loop, not sent yet (see `settle`). */
  #queued: QueuedSettle[] = [];
  #sending: NodeJS.Immediate | undefined;

  constructor(options: RedisQuotaStoreOptions) {
    this.namespace = options.namespace ?? 'stowage:quota:';
    this.leaseMs = options.leaseMs ?? 30_000;
    if (!(this.leaseMs > 0)) throw new StorageError('E_CONFIG_INVALID', `the quota store's leaseMs must be a positive number of ms, not ${this.leaseMs}`);
    this.redis = new RedisConnection(options.url, 'quota store');
    for (const s of SCRIPTS) this.redis.define(s);
  }

  /** For Redis, a crashed process's reservations lapse at the end of their lease: open answers those that already have. */
  async open(): Promise<PendingWrite[]> {
    return this.takeLapsedWrites();
  }

  async reserve(request: ReservationRequest): Promise<ReserveOutcome> {
    const hasKey = request.key !== undefined;
    const reply = await this.call(RESERVE, [
      request.id,
      hasKey ? '1' : '0',
      request.key ?? '',
      JSON.stringify(request.before ?? null),
      expiry(request.expiresAt),
      ...itemArgs(request.items),
    ]);
    return outcome(reply) === 'busy' ? 'busy' : 'ok';
  }

  async reserveIndexed(request: IndexedReservationRequest): Promise<IndexedReserveOutcome> {
    const args = [request.id, request.key, expiry(request.expiresAt), amount(request.size, 'size'), request.objects === undefined ? '' : amount(request.objects, 'objects')];
    for (const c of request.counters) args.push(c.counter, limitArg(c.maxBytes, 'maxBytes'), limitArg(c.maxObjects, 'maxObjects'));
    const reply = await this.call(RESERVE_INDEXED, args);
    if (outcome(reply) === 'busy') return 'busy';
    const indexed = (reply as [string, string | null])[1];
    return { before: indexed === null ? null : { size: Number(indexed) } };
  }

  async grow(id: string, items: ReservationItem[], expiresAt: number): Promise<void> {
    outcome(await this.call(GROW, [id, expiry(expiresAt), ...itemArgs(items)]));
  }

  async renew(ids: readonly string[], expiresAt: number): Promise<void> {
    if (ids.length > 0) await this.call(RENEW, [expiry(expiresAt), ...ids]);
  }

  /**
   * Settles (and releases) are queued and go out together, as one script run: ahead of
   * the store's next call when one is made in the same turn of the event loop (in the same
   * socket write), else at the end of the turn. Concurrent writes settle in fewer round
   * trips, and a call never overtakes a settle made before it. Each caller's promise
   * resolves once Redis has applied the run, with the usage of every counter the run
   * touched. One run is one script: an error in it (a damaged counter) fails every settle
   * of the run, whose reservations are then repaired from their keys once they lapse.
   */
  async settle(ids: readonly string[], deltas: readonly CounterDelta[], index: readonly IndexEntry[] = []): Promise<Map<string, CounterUsage>> {
    const deltaArgs: string[] = [];
    for (const d of deltas) deltaArgs.push(d.counter, amount(d.bytes, 'bytes', true), amount(d.objects, 'objects', true));
    const indexArgs: string[] = [];
    for (const e of index) indexArgs.push(e.key, e.size === null ? '' : amount(e.size, 'size'));
    return new Promise((resolve, reject) => {
      this.#queued.push({ ids: [...ids], deltas: deltaArgs, index: indexArgs, resolve, reject });
      this.#sending ??= setImmediate(() => void this.#sendQueued());
    });
  }

  /** Sends the settles waiting (if any), as one script run; each caller gets the usage of every counter it touched. */
  #sendQueued(): Promise<void> {
    clearImmediate(this.#sending);
    this.#sending = undefined;
    const queued = this.#queued;
    if (queued.length === 0) return Promise.resolve();
    this.#queued = [];
    const ids = queued.flatMap((q) => q.ids);
    const deltas = queued.flatMap((q) => q.deltas);
    const args = [String(ids.length), ...ids, String(deltas.length / 3), ...deltas, ...queued.flatMap((q) => q.index)];
    // Straight to Redis, not through `call`: SETTLE never answers 'sweep'.
    return this.redis
      .eval(SETTLE.name, [this.namespace, String(Date.now()), ...args])
      .then(usageMap)
      .then(
        (usage) => {
          for (const q of queued) q.resolve(usage);
        },
        (err: unknown) => {
          for (const q of queued) q.reject(err);
        },
      );
  }

  async release(ids: readonly string[]): Promise<void> {
    if (ids.length > 0) await this.settle(ids, []);
  }

  /** Builds the new index aside in batches, then swaps it in with one RENAME (writes settled meanwhile are the reconcile's known gap). */
  async replaceIndex(entries: ReadonlyMap<string, number>): Promise<void> {
    const next = `${this.namespace}idx:next`;
    // Not through `call`: the settles waiting go first here too.
    void this.#sendQueued();
    await this.redis.run(async (client) => {
      await client.del(next);
      let batch: string[] = [];
      const flush = async () => {
        if (batch.length > 0) await client.hset(next, ...batch);
        batch = [];
      };
      for (const [key, size] of entries) {
        batch.push(key, amount(size, 'size'));
        if (batch.length >= 2000) await flush();
      }
      await flush();
      if (entries.size === 0) await client.del(`${this.namespace}idx`);
      else await client.rename(next, `${this.namespace}idx`);
    });
  }

  async read(counters?: readonly string[]): Promise<Map<string, CounterUsage>> {
    if (counters?.length === 0) return new Map();
    return usageMap(await this.call(READ, counters ? ['0', ...counters] : ['1']));
  }

  async reset(counters: ReadonlyMap<string, { bytes: number; objects: number }>, scopes: readonly string[]): Promise<void> {
    const args = [String(counters.size)];
    for (const [id, u] of counters) args.push(id, amount(u.bytes, 'bytes', true), amount(u.objects, 'objects', true));
    await this.call(RESET, [...args, ...scopes]);
  }

  async takeLapsedWrites(): Promise<PendingWrite[]> {
    const writes: PendingWrite[] = [];
    for (;;) {
      const batch = (await this.call(TAKE_LAPSED, [String(TAKE_BATCH)])) as [string, string[]][];
      for (const [id, fields] of batch) writes.push(pendingWrite(id, fields));
      if (batch.length < TAKE_BATCH) return writes;
    }
  }

  async close(): Promise<void> {
    await this.#sendQueued().catch(() => undefined);
    await this.redis.close();
  }

  /** Runs a script with the namespace and the caller's clock first, again while it answers that lapsed reservations are left to sweep. */
  private async call(script: LuaScript, args: readonly string[]): Promise<LuaReply> {
    // Settles waiting go first, in the same tick: one socket write with this call, and in order.
    void this.#sendQueued();
    for (;;) {
      const reply = await this.redis.eval(script.name, [this.namespace, String(Date.now()), ...args]);
      if (!(Array.isArray(reply) && reply[0] === 'sweep')) return reply;
    }
  }
}

/** A number as the exact decimal string Redis's HINCRBY takes; amounts are whole and (unless deltas) not negative. */
function amount(n: number, what: string, signed = false): string {
  if (!Number.isSafeInteger(n) || (!signed && n < 0)) {
    throw new StorageError('E_INVALID_ARGUMENT', `a quota ${what} amount must be a whole number${signed ? '' : ' >= 0'}, not ${n}`);
  }
  return String(n);
}

/** A limit as the scripts take it: empty for none. */
function limitArg(n: number | undefined, what: string): string {
  return n === undefined || n === Infinity ? '' : amount(n, what);
}

/** An expiry (epoch ms) as a ZSET score. */
function expiry(at: number): string {
  if (at === Infinity) return '+inf';
  if (!Number.isFinite(at)) throw new StorageError('E_INVALID_ARGUMENT', `a reservation's expiresAt must be a time in ms, not ${at}`);
  return String(at);
}

function itemArgs(items: readonly ReservationItem[]): string[] {
  return items.flatMap((i) => [i.counter, amount(i.bytes, 'bytes'), amount(i.objects, 'objects'), limitArg(i.maxBytes, 'maxBytes'), limitArg(i.maxObjects, 'maxObjects')]);
}

/** `ok` or `busy` from a reserve or grow reply; throws QuotaRefused for a refusal. */
function outcome(reply: LuaReply): string {
  const [what, counter, kind, limit, used, reserved, asked] = reply as [string, string, 'bytes' | 'objects', string, number, number, number];
  if (what === 'refused') throw new QuotaRefused({ counter, kind, limit: Number(limit), used, reserved, asked });
  return what;
}

/** Counter usage from the flat reply of `usage` (id, b, o, rb, ro per counter). */
function usageMap(reply: LuaReply): Map<string, CounterUsage> {
  const flat = reply as string[];
  const map = new Map<string, CounterUsage>();
  for (let i = 0; i + 4 < flat.length; i += 5) {
    map.set(flat[i]!, { bytes: Number(flat[i + 1]), objects: Number(flat[i + 2]), reservedBytes: Number(flat[i + 3]), reservedObjects: Number(flat[i + 4]) });
  }
  return map;
}

/** A lapsed keyed reservation from the fields of its hash (see redis-scripts.ts). */
function pendingWrite(id: string, fields: string[]): PendingWrite {
  let key = '';
  let before: KeyState = null;
  const items = new Map<string, ReservationItem>();
  const item = (counter: string) => items.get(counter) ?? items.set(counter, { counter, bytes: 0, objects: 0 }).get(counter)!;
  for (let i = 0; i + 1 < fields.length; i += 2) {
    const name = fields[i]!;
    const value = fields[i + 1]!;
    const counter = name.slice(2);
    if (name === 'k') key = value;
    else if (name === 'bf') before = JSON.parse(value) as KeyState;
    else if (name.startsWith('b:')) item(counter).bytes = Number(value);
    else if (name.startsWith('o:')) item(counter).objects = Number(value);
    else if (name.startsWith('m:')) {
      const [maxBytes, maxObjects] = value.split(',');
      if (maxBytes) item(counter).maxBytes = Number(maxBytes);
      if (maxObjects) item(counter).maxObjects = Number(maxObjects);
    }
  }
  return { id, key, before, items: [...items.values()] };
}
