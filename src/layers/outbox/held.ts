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
 * resumed through the same instance, and sessions the backend already held when it went
 * down resume there once it is back.
 */
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { KeyMutex } from '../../core/concurrency.js';
import type { Driver } from '../../core/contract.js';
import type { SessionRecord } from '../../core/sessions.js';
import { FsDriver } from '../../drivers/fs/driver.js';
import { isTemporary } from './delivery.js';

/** The backoff of the background delivery of held internal files. */
export interface HeldDelivery {
  initialDelayMs: number;
  maxDelayMs: number;
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

  /** Whether the internal file `name` is held here. */
  holdsFile(name: string): boolean {
    return this.#files.has(name);
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

  /** Keeps `data` as the internal file `name` here, durably, and schedules its delivery. */
  async putFile(name: string, data: Uint8Array): Promise<void> {
    await this.#names.run(name, async () => {
      await this.#local.putInternal(name, data);
      this.#files.add(name);
    });
    this.#schedule(this.#delay);
  }

  /** The held internal file `name` (undefined once delivered: read the backend then). */
  async readFile(name: string): Promise<Uint8Array | undefined> {
    return this.#names.run(name, () => this.#local.readInternal(name));
  }

  /** Removes the held copies of these names (the backend's are the caller's to remove first). */
  async deleteFiles(names: readonly string[]): Promise<void> {
    for (const name of names.filter((n) => this.#files.has(n))) {
      await this.#names.run(name, async () => {
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
    for (const name of [...this.#files]) {
      if (this.#closed) return;
      try {
        await this.#names.run(name, async () => {
          const data = await this.#local.readInternal(name);
          if (data !== undefined) await this.#backend.putInternal(name, data);
          // Removed only after the backend has it: a crash in between delivers it again, the same bytes.
          await this.#local.deleteInternal([name]);
          this.#files.delete(name);
        });
      } catch (err) {
        if (!isTemporary(err)) throw err;
        this.#delay = Math.min(this.#backoff.maxDelayMs, Math.max(1, this.#delay * 2));
        this.#schedule(this.#delay);
        return;
      }
    }
    this.#delay = this.#backoff.initialDelayMs;
  }

  #schedule(delayMs: number): void {
    if (this.#closed || this.#timer !== undefined) return;
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      // A failure that is not temporary (the backend refuses the name) is retried at the longest backoff.
      this.deliver().catch(() => this.#schedule(this.#backoff.maxDelayMs));
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
