/**
 * Upload sessions and internal files the outbox holds while the backend is down, so a
 * resumable upload (tus) can start, go on and finish during an outage as a plain upload
 * does: a session the backend cannot create is created here instead, its writes and its
 * completion stay here, and its completion hands the whole object to the outbox (stored
 * at once if the backend is back, else queued and delivered like any queued write). An
 * internal file (a tus upload's record) the backend cannot take is kept here and
 * delivered in the background once the backend answers; while it is held, reads and
 * writes of its name are served here, so the newest version is always the one read.
 *
 * They live in `<outbox dir>/held/`, a folder of the fs driver's own layout (sessions
 * and internal files under its `.stowage/`), so they have its crash safety: committed
 * offsets survive a SIGKILL, and a restarted process finds them again. Only this
 * process (the outbox's lock owner) sees them: an upload started during an outage is
 * resumed through the same instance only (its session never moves to the backend; it
 * completes into the outbox), and sessions the backend already held when it went down
 * resume there once it is back. Completing a held session is idempotent: a retry, or a
 * restart after the object was stored or queued but before the session was removed,
 * finds the object with the session's SHA-256 and size at its key and only removes the
 * session.
 */
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { KeyMutex } from '../../core/concurrency.js';
import type { Driver } from '../../core/contract.js';
import type { InternalPutOptions } from '../../core/internal-files.js';
import { errorMessage, StorageError } from '../../core/errors.js';
import { sessionNotFound, type DriverSessionCompleteOptions, type SessionRecord } from '../../core/sessions.js';
import type { ObjectInfo } from '../../core/types.js';
import { FsDriver } from '../../drivers/fs/driver.js';
import { isTemporary } from './delivery.js';

/** The backoff of the background delivery of held internal files, and where its warnings go. */
export interface HeldDelivery {
  initialDelayMs: number;
  maxDelayMs: number;
  warn: (message: string) => void;
}

/** How a held session's completion stores its object (the outbox's own put and stat). */
export interface HeldCompletion {
  /** Stores (or queues) the bytes at the key with the record's attributes and `opts`' conditions. */
  put(record: SessionRecord, bytes: NodeJS.ReadableStream, opts: DriverSessionCompleteOptions): Promise<ObjectInfo>;
  /** The object at a key now (a queued version included); rejects when there is none or it cannot be known. */
  stat(key: string): Promise<ObjectInfo>;
}

/** See the module comment. */
export class HeldUploads {
  /** The fs driver of the held folder. */
  readonly #local: FsDriver;
  readonly #backend: Driver;
  readonly #sessions = new Set<string>();
  readonly #files = new Set<string>();
  /** One operation at a time per held file name: a delivery never removes a newer version than it sent. */
  readonly #names = new KeyMutex();
  /** One completion at a time per held session. */
  readonly #completing = new KeyMutex();
  readonly #backoff: HeldDelivery;
  #delay: number;
  #timer: NodeJS.Timeout | undefined;
  #delivering: Promise<void> | undefined;
  #closed = false;

  private constructor(local: FsDriver, backend: Driver, backoff: HeldDelivery) {
    this.#local = local;
    this.#backend = backend;
    this.#backoff = backoff;
    this.#delay = backoff.initialDelayMs;
  }

  /** The held sessions and files in `<dir>/held/` (created on first use), their delivery scheduled if any are held. */
  static async open(dir: string, backend: Driver, backoff: HeldDelivery): Promise<HeldUploads> {
    const root = join(dir, 'held');
    await mkdir(root, { recursive: true });
    const held = new HeldUploads(new FsDriver({ root, followSymlinks: false }), backend, backoff);
    await held.#recover();
    return held;
  }

  async #recover(): Promise<void> {
    for (const record of await this.#local.listSessions('').catch(() => [])) this.#sessions.add(record.id);
    let cursor: string | undefined;
    do {
      const page = await this.#local.listInternal('', cursor).catch(() => ({ names: [], cursor: undefined }));
      for (const name of page.names) this.#files.add(name);
      cursor = page.cursor;
    } while (cursor !== undefined);
    if (this.#files.size > 0) this.#schedule(0);
  }

  /** Whether the session `id` is held here. */
  holdsSession(id: string): boolean {
    return this.#sessions.has(id);
  }

  /** The held sessions' driver, for the calls that read or write one (get, write, read). */
  get sessions(): Driver {
    return this.#local;
  }

  /** Creates the session here (the backend could not). */
  async createSession(record: SessionRecord): Promise<SessionRecord> {
    const created = await this.#local.createSession(record);
    this.#sessions.add(record.id);
    return created;
  }

  /** Removes a held session and its bytes. */
  async abortSession(id: string): Promise<void> {
    await this.#local.abortSession(id);
    this.#sessions.delete(id);
  }

  /**
   * Held sessions share the outbox's disk cap (`maxBytes`, of which `queuedBytes` are
   * queued writes'): `more` bytes for `key` that cannot fit beside them and what the held
   * sessions hold or will hold (a declared size, else the offset) are refused with
   * E_QUOTA_EXCEEDED (507), before a byte.
   */
  async checkRoom(key: string, more: number, queuedBytes: number, maxBytes: number): Promise<void> {
    const used = queuedBytes + (await this.#local.listSessions('')).reduce((sum, r) => sum + (r.size ?? r.offset), 0);
    if (used + more <= maxBytes) return;
    throw new StorageError('E_QUOTA_EXCEEDED', `the outbox is full (${used} of ${maxBytes} bytes used by queued writes and held upload sessions, the upload needs ${more} more): the backend is down and the upload cannot be held`, { key, details: { maxBytes } });
  }

  /**
   * Completes a held session through `store` (see the module comment on retries), then
   * removes it; one completion at a time per session. A session no longer held is
   * E_NOT_FOUND.
   */
  async complete(id: string, opts: DriverSessionCompleteOptions, store: HeldCompletion): Promise<ObjectInfo> {
    return this.#completing.run(id, async () => {
      if (!this.#sessions.has(id)) throw sessionNotFound(id);
      const record = await this.#local.getSession(id);
      const there = await store.stat(record.key).catch(() => undefined);
      if (there !== undefined && there.sha256 === opts.sha256 && there.size === record.offset) {
        await this.abortSession(id);
        return there;
      }
      const stream = await this.sessions.readSession(id, {});
      try {
        const info = await store.put(record, stream, opts);
        await this.abortSession(id);
        return info;
      } finally {
        stream.destroy();
      }
    });
  }

  /**
   * Stores the internal file in the backend, or, when it cannot take it now, holds it
   * here and delivers it later; while held, the name is written and read here. Cache
   * files (`opts.cache`) are not worth holding: their failure is the caller's.
   */
  async putInternal(name: string, data: Uint8Array, opts?: InternalPutOptions): Promise<void> {
    if (this.#files.has(name)) return this.#putFile(name, data);
    try {
      await this.#backend.putInternal(name, data, opts);
    } catch (err) {
      if (opts?.cache === true || !isTemporary(err)) throw err;
      await this.#putFile(name, data);
    }
  }

  /** The held version of the internal file while there is one, else the backend's. */
  async readInternal(name: string): Promise<Uint8Array | undefined> {
    if (this.#files.has(name)) {
      const data = await this.#names.run(name, () => this.#local.readInternal(name));
      if (data !== undefined) return data;
    }
    return this.#backend.readInternal(name);
  }

  /** Keeps `data` as the internal file `name` here, durably, and schedules its delivery. */
  async #putFile(name: string, data: Uint8Array): Promise<void> {
    await this.#names.run(name, async () => {
      await this.#local.putInternal(name, data);
      this.#files.add(name);
    });
    this.#schedule(this.#delay);
  }

  /**
   * Removes these internal files from the backend, and their held copies. A held name is
   * removed from the backend and then here under its lock, so a delivery of it in
   * progress cannot bring it back after the delete; if the backend's delete fails, the
   * held copy (the newest) stays.
   */
  async deleteInternal(names: readonly string[]): Promise<void> {
    const held = names.filter((n) => this.#files.has(n));
    const others = names.filter((n) => !this.#files.has(n));
    if (others.length > 0 || held.length === 0) await this.#backend.deleteInternal(others);
    for (const name of held) {
      await this.#names.run(name, async () => {
        await this.#backend.deleteInternal([name]);
        await this.#local.deleteInternal([name]);
        this.#files.delete(name);
      });
    }
  }

  /** The held files' count and the held sessions' count, for status reports. */
  get counts(): { sessions: number; files: number } {
    return { sessions: this.#sessions.size, files: this.#files.size };
  }

  /** Delivers every held internal file it can now; stops at the first temporary failure (the next try backs off). */
  async deliver(): Promise<void> {
    this.#delivering ??= this.#deliverAll().finally(() => (this.#delivering = undefined));
    return this.#delivering;
  }

  async #deliverAll(): Promise<void> {
    let refused = false;
    for (const name of [...this.#files]) {
      if (this.#closed) return;
      try {
        await this.#names.run(name, async () => {
          if (!this.#files.has(name)) return; // deleted meanwhile
          const data = await this.#local.readInternal(name);
          if (data !== undefined) await this.#backend.putInternal(name, data);
          // Removed only after the backend has it: a crash in between delivers it again, the same bytes.
          await this.#local.deleteInternal([name]);
          this.#files.delete(name);
        });
      } catch (err) {
        if (isTemporary(err)) {
          this.#delay = Math.min(this.#backoff.maxDelayMs, Math.max(1, this.#delay * 2));
          this.#schedule(this.#delay);
          return;
        }
        // The backend refuses this one: it stays held (and read from here), the others go on.
        refused = true;
        this.#backoff.warn(`outbox: the held internal file ${JSON.stringify(name)} was refused by the backend and stays held: ${errorMessage(err)}`);
      }
    }
    this.#delay = this.#backoff.initialDelayMs;
    if (refused) this.#schedule(this.#backoff.maxDelayMs);
  }

  #schedule(delayMs: number): void {
    if (this.#closed || this.#timer !== undefined) return;
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      void this.deliver().catch((err: unknown) => {
        this.#backoff.warn(`outbox: delivering held internal files failed: ${errorMessage(err)}`);
        this.#schedule(this.#backoff.maxDelayMs);
      });
    }, delayMs).unref();
  }

  /** Stops the background delivery (waiting for one in progress) and closes the held folder's driver. */
  async close(): Promise<void> {
    this.#closed = true;
    clearTimeout(this.#timer);
    await this.#delivering?.catch(() => undefined);
    await this.#local.close();
  }
}
