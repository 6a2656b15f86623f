/**
 * The quota layer: every change of the storage is checked against the quotas it touches
 * before a byte is stored, and counted once it is done, in O(quotas of the key) store
 * calls: never a listing on the write path. Writes of a known size (a buffer, a file, a
 * declared `size`) reserve it up front; streams reserve as they go, in steps, and stop
 * with E_QUOTA_EXCEEDED the moment the next step does not fit (nothing stored). Overwrites
 * count their difference; deletes, copies and moves update every quota on either side;
 * upload sessions reserve their declared size from creation until completion, abort or
 * expiry. See ledger.ts for one change, control.ts for status, alerts and reconcile.
 */
import type { Readable } from 'node:stream';
import { DerivedBody, type PutBody, type PutBodyChecks } from '../../core/body.js';
import { KeyMutex, mapConcurrently } from '../../core/concurrency.js';
import type { Driver, DriverPresignPostOptions, DriverPutOptions, DriverSignedUrlOptions } from '../../core/contract.js';
import { isStorageError } from '../../core/errors.js';
import type { DriverSessionCompleteOptions, DriverSessionWriteOptions, SessionBody, SessionRecord } from '../../core/sessions.js';
import type { ObjectInfo, PresignedPost, PutFileResult, SignedUrl, WriteResult } from '../../core/types.js';
import { DriverLayer } from '../layer.js';
import { QuotaControl, type QuotaOptions } from './control.js';
import { KeyChange, refusing } from './ledger.js';
import { itemsFor, type KeyState, type QuotaStore } from './store.js';

/** How much a stream of unknown length reserves at a time. */
const STREAM_STEP_BYTES = 1024 * 1024;

/** A quota layer around `driver` (see the module comment); `quotaOf(driver)` finds its control. */
export function withQuotas(driver: Driver, options: QuotaOptions): QuotaLayer {
  return new QuotaLayer(driver, options);
}

/** See {@link withQuotas}. */
export class QuotaLayer extends DriverLayer {
  /** Status, usage, alerts and reconcile of this layer's quotas. */
  readonly control: QuotaControl;
  /** Orders this process's changes per key, so a change's `before` is never stale within it. */
  readonly #mutex = new KeyMutex();

  constructor(inner: Driver, options: QuotaOptions) {
    super(inner);
    this.control = new QuotaControl(inner, options);
  }

  /**
   * Runs `change` on `key` under the quota bookkeeping: `size` (when known) is reserved
   * before `run` starts; `run` gets the change to grow a stream's reservation.
   */
  async #write<T extends WriteResult | ObjectInfo | undefined>(key: string, size: number | undefined, run: (change: KeyChange | undefined) => Promise<T>, signal?: AbortSignal, alsoRelease: readonly string[] = []): Promise<T> {
    const quotas = this.control.matcher.match(key);
    if (quotas.length === 0) return run(undefined);
    const store = await this.control.open();
    if (store === undefined) return run(undefined);
    return this.#mutex.run(key, async () => {
      const change = new KeyChange(store, key, quotas, this.control.indexed);
      const began = await this.control.guard(() => change.begin(this.inner, size ?? 0, signal));
      if (began === false) return run(undefined);
      let result: T;
      try {
        result = await run(change);
      } catch (err) {
        await this.control.guard(async () => this.control.observe(await change.fail(this.inner, this.control.warn)));
        throw err;
      }
      const after: KeyState = result === undefined ? change.before : { size: result.size, etag: 'etag' in result ? result.etag : `queued:${result.id}` };
      await this.control.guard(async () => this.control.observe(await change.settle(after, alsoRelease)));
      return result;
    });
  }

  override put(key: string, body: PutBody, opts: DriverPutOptions): Promise<WriteResult> {
    // A concatenation's bytes are covered by its sessions' reservations, as a completed
    // session's are: it reserves only what the object adds besides them, and drops them.
    const sessions = opts.sessions ?? [];
    if (sessions.length > 0) return this.#write(key, 0, () => this.inner.put(key, body, opts), opts.signal, sessions.map(sessionReservation));
    // A body of known size reserved all of it, and PutBody stops one that passes its size.
    return this.#write(key, body.knownSize, (change) => this.inner.put(key, change && body.knownSize === undefined ? new MeteredBody(body, change) : body, opts), opts.signal);
  }

  override putFile(key: string, path: string, opts: DriverPutOptions, checks: PutBodyChecks): Promise<WriteResult & Partial<PutFileResult>> {
    return this.#write(key, checks.size, () => this.inner.putFile(key, path, opts, checks), opts.signal);
  }

  override async copy(from: string, to: string): Promise<ObjectInfo> {
    if (from === to || this.control.matcher.match(to).length === 0) return this.inner.copy(from, to);
    const source = await this.inner.stat(from);
    return this.#write(to, source.size, () => this.inner.copy(from, to));
  }

  override async copyFrom(source: Driver, from: string, to: string): Promise<ObjectInfo | undefined> {
    if (this.control.matcher.match(to).length === 0) return this.inner.copyFrom(source, from, to);
    const info = await source.stat(from);
    return this.#write(to, info.size, () => this.inner.copyFrom(source, from, to));
  }

  override async move(from: string, to: string): Promise<ObjectInfo> {
    const fromQuotas = this.control.matcher.match(from);
    if (from === to || (fromQuotas.length === 0 && this.control.matcher.match(to).length === 0)) return this.inner.move(from, to);
    const store = await this.control.open();
    if (fromQuotas.length === 0 || store === undefined) {
      const source = await this.inner.stat(from);
      return this.#write(to, source.size, () => this.inner.move(from, to));
    }
    // The source is taken too, so a crash between the move and its settling is repaired
    // on both sides: each key is looked at again at start-up.
    return this.#mutex.run(from, async () => {
      const leaving = new KeyChange(store, from, fromQuotas, this.control.indexed);
      const began = await this.control.guard(() => leaving.begin(this.inner, 0, undefined, 0));
      let info: ObjectInfo;
      try {
        const size = leaving.before?.size ?? (await this.inner.stat(from)).size;
        info = await this.#write(to, size, () => this.inner.move(from, to));
      } catch (err) {
        if (began !== false) await this.control.guard(async () => this.control.observe(await leaving.fail(this.inner, this.control.warn)));
        throw err;
      }
      // The move succeeded: by the contract the source is gone.
      if (began !== false) await this.control.guard(async () => this.control.observe(await leaving.settle(null)));
      return info;
    });
  }

  override async delete(key: string): Promise<void> {
    if (this.control.matcher.match(key).length === 0) return this.inner.delete(key);
    await this.#remove([key], () => this.inner.delete(key));
  }

  override async deleteMany(keys: readonly string[]): Promise<number> {
    const metered = [...new Set(keys.filter((k) => this.control.matcher.match(k).length > 0))];
    if (metered.length === 0) return this.inner.deleteMany(keys);
    let count = 0;
    await this.#remove(metered, async () => {
      count = await this.inner.deleteMany(keys);
    });
    return count;
  }

  /** Deletes under the bookkeeping: each key is taken, looked at, removed by `run`, and settled by what it held. */
  async #remove(keys: readonly string[], run: () => Promise<void>): Promise<void> {
    const store = await this.control.open();
    if (store === undefined) return run();
    const sorted = [...keys].sort();
    const holdAll = async (i: number): Promise<void> => {
      if (i === sorted.length) return this.#removeTaken(store, sorted, run);
      return this.#mutex.run(sorted[i] as string, () => holdAll(i + 1));
    };
    // A thousand keys are a thousand mutexes deep at most: deleteMany's batches are that large.
    await holdAll(0);
  }

  async #removeTaken(store: QuotaStore, keys: readonly string[], run: () => Promise<void>): Promise<void> {
    const changes = keys.map((key) => new KeyChange(store, key, this.control.matcher.match(key), this.control.indexed));
    const taken = await this.control.guard(() => mapConcurrently(changes, 16, (c) => c.begin(this.inner, 0, undefined, 0)));
    if (!taken) return run();
    try {
      await run();
    } catch (err) {
      await this.control.guard(() => mapConcurrently(changes, 16, async (c) => this.control.observe(await c.fail(this.inner, this.control.warn))));
      throw err;
    }
    await this.control.guard(() => mapConcurrently(changes, 16, async (c) => this.control.observe(await c.settle(null))));
  }

  override async signedUrl(key: string, opts: DriverSignedUrlOptions): Promise<SignedUrl> {
    if (opts.method === 'PUT') await this.control.checkUpload(key, opts.contentLength ?? opts.maxSize);
    return this.inner.signedUrl(key, opts);
  }

  override async presignPost(key: string, opts: DriverPresignPostOptions): Promise<PresignedPost> {
    const maxSize = await this.control.formMaxSize(key, opts.maxSize);
    // Options a quota does not cap are forwarded as they came.
    return this.inner.presignPost(key, maxSize === opts.maxSize ? opts : { ...opts, maxSize });
  }

  override async createSession(record: SessionRecord): Promise<SessionRecord> {
    const quotas = this.control.matcher.match(record.key);
    if (quotas.length === 0) return this.inner.createSession(record);
    const store = await this.control.open();
    if (store === undefined) return this.inner.createSession(record);
    const id = sessionReservation(record.id);
    const taken = await this.control.guard(() => refusing(quotas, () => store.reserve({ id, expiresAt: record.expiresAt.getTime(), items: itemsFor(quotas, null, record.size ?? 0, record.partial ? 0 : 1) })));
    if (taken === false) return this.inner.createSession(record);
    try {
      const created = await this.inner.createSession(record);
      this.#remember(created);
      return created;
    } catch (err) {
      await this.control.guard(() => store.release([id]));
      throw err;
    }
  }

  override async getSession(id: string): Promise<SessionRecord> {
    const record = await this.inner.getSession(id);
    this.#remember(record);
    return record;
  }

  /**
   * A session whose size is known reserved it already (at creation, or when a write
   * declared it: reserved then). One of deferred length is checked after each write, as
   * its bytes are stored in the session rather than in an object: the write that passes a
   * quota aborts the session with E_QUOTA_EXCEEDED, so no object of it is ever stored.
   */
  override async writeSession(id: string, body: SessionBody, opts: DriverSessionWriteOptions): Promise<SessionRecord> {
    const store = await this.control.open();
    if (store === undefined || (this.#sized.get(id) === true && opts.size === undefined)) return this.inner.writeSession(id, body, opts);
    const before = await this.getSession(id);
    const quotas = this.control.matcher.match(before.key);
    if (quotas.length === 0) return this.inner.writeSession(id, body, opts);
    const reserve = async (bytes: number, onRefused: () => Promise<void>) => {
      try {
        await this.control.guard(() => refusing(quotas, () => store.grow(sessionReservation(id), itemsFor(quotas, null, bytes, 0), before.expiresAt.getTime())));
      } catch (err) {
        if (isStorageError(err, 'E_QUOTA_EXCEEDED')) await onRefused();
        throw err;
      }
    };
    if (before.size === undefined && opts.size !== undefined) await reserve(opts.size - before.offset, async () => undefined);
    const after = await this.inner.writeSession(id, body, opts);
    this.#remember(after);
    if (before.size === undefined && opts.size === undefined) await reserve(after.offset - before.offset, () => this.abortSession(id));
    return after;
  }

  /**
   * Sessions whose writes need no look-up (their size is declared, or no quota covers
   * their key), as far as this process has seen them. Bounded: the oldest are forgotten.
   */
  readonly #sized = new Map<string, boolean>();

  #remember(record: SessionRecord): void {
    this.#sized.delete(record.id);
    this.#sized.set(record.id, record.size !== undefined || this.control.matcher.match(record.key).length === 0);
    if (this.#sized.size > 10_000) this.#sized.delete(this.#sized.keys().next().value as string);
  }

  override async completeSession(id: string, opts: DriverSessionCompleteOptions): Promise<ObjectInfo> {
    const record = await this.inner.getSession(id);
    // The session's reservation covers the object: the completing write reserves nothing more, and drops it.
    const info = await this.#write(record.key, 0, () => this.inner.completeSession(id, opts), undefined, [sessionReservation(id)]);
    this.#sized.delete(id);
    return info;
  }

  override async abortSession(id: string): Promise<void> {
    const result = await this.inner.abortSession(id);
    this.#sized.delete(id);
    const store = await this.control.open();
    if (store !== undefined) await this.control.guard(() => store.release([sessionReservation(id)]));
    return result;
  }

  override readSession(id: string, opts: { signal?: AbortSignal }): Promise<Readable> {
    return this.inner.readSession(id, opts);
  }

  override async close(): Promise<void> {
    await this.control.close();
    return this.inner.close();
  }
}

/** The store id of an upload session's reservation. */
export function sessionReservation(sessionId: string): string {
  return `session:${sessionId}`;
}

/**
 * The body the backend receives from a metered write of unknown size: the caller's bytes,
 * stopped with E_QUOTA_EXCEEDED as soon as they pass what the quotas can take. It
 * reserves a step at a time, and the exact remainder when a whole step does not fit.
 */
class MeteredBody extends DerivedBody {
  readonly #change: KeyChange;

  constructor(source: PutBody, change: KeyChange) {
    super(source);
    this.#change = change;
  }

  override async *[Symbol.asyncIterator](): AsyncIterator<Uint8Array> {
    // Bytes the reservation covers beyond what the key held before.
    let covered = 0;
    let size = 0;
    const before = this.#change.before?.size ?? 0;
    for await (const chunk of this.source) {
      size += chunk.byteLength;
      if (size - before > covered) {
        const needed = size - before - covered;
        try {
          await this.#change.grow(Math.max(needed, STREAM_STEP_BYTES));
          covered += Math.max(needed, STREAM_STEP_BYTES);
        } catch (err) {
          if (!isStorageError(err, 'E_QUOTA_EXCEEDED')) throw err;
          await this.#change.grow(needed);
          covered += needed;
        }
      }
      yield chunk;
    }
  }

}
