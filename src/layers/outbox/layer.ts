/**
 * The outbox layer: writes that fail because the backend is down (E_UNAVAILABLE or
 * E_TIMEOUT, after the driver's own retries) are spooled durably on local disk and
 * resolve a `QueuedWrite`; delivery runs in the background (delivery.ts). While a key is
 * queued, `stat` and `read` serve the queued version; a later write or delete of the key
 * supersedes it. `list` shows the backend only: a queued key is listed once delivered.
 * Upload sessions the backend cannot create, and internal files it cannot take, are held
 * in the outbox's folder (held.ts): a session held there completes into the outbox like a
 * put. `listInternal` lists the backend's internal files only.
 */
import { mkdir, open } from 'node:fs/promises';
import { openRegularFile, PutBody, type PutBodyChecks } from '../../core/body.js';
import type { Driver, DriverPutOptions, DriverReadOptions, DriverSignedUrlOptions, ObjectLocation } from '../../core/contract.js';
import type { InternalPutOptions } from '../../core/internal-files.js';
import type { DriverSessionCompleteOptions, DriverSessionWriteOptions, SessionBody, SessionRecord } from '../../core/sessions.js';
import type { Readable } from 'node:stream';
import { errorMessage, StorageError } from '../../core/errors.js';
import { checkWritePreconditions, copyAttributes, notModifiedIf, resolveRange } from '../../core/objects.js';
import type { NotModified, ObjectInfo, ObjectStream, PutFileResult, QueuedWrite, SignedUrl, WriteResult } from '../../core/types.js';
import { errnoCode } from '../../drivers/fs/errors.js';
import { DriverLayer } from '../layer.js';
import { BodyCapture, MemoryBudget } from './capture.js';
import { BackgroundTasks, KeyMutex } from '../../core/concurrency.js';
import { DEFAULT_INITIAL_DELAY_MS, DEFAULT_MAX_DELAY_MS, Delivery, isTemporary } from './delivery.js';
import { HeldUploads } from './held.js';
import { entryInfo, OutboxEntries, queuedWrite } from './entries.js';
import { lockOutbox, newEntryId } from './files.js';
import type { EntryRecord } from './journal.js';
import { DEFAULT_MAX_BYTES, OutboxControl, type OutboxOptions } from './control.js';

/** The memory budget of the bodies the backend is taking, by default: beyond it they are copied to temp files on the way. */
const DEFAULT_MEMORY_BYTES = 64 * 1024 * 1024;

const NO_MEMORY = new MemoryBudget(0);

/** The layer; see the module comment. Its operations for operators are in {@link OutboxControl}. */
export class OutboxLayer extends DriverLayer {
  /** status, drain, dead letters: for the CLI, the health route and metrics. */
  readonly control: OutboxControl;
  readonly #options: OutboxOptions;
  readonly #keys = new KeyMutex();
  /** Clean-ups still running after their write returned (see put). */
  readonly #cleanups = new BackgroundTasks();
  readonly #budget: MemoryBudget;
  readonly #opening: Promise<{ entries: OutboxEntries; delivery: Delivery; held: HeldUploads; release: () => Promise<void> }>;
  #entries: OutboxEntries | undefined;

  constructor(inner: Driver, options: OutboxOptions) {
    super(inner);
    checkOptions(options);
    this.#options = options;
    this.#budget = new MemoryBudget(options.memoryBytes ?? DEFAULT_MEMORY_BYTES);
    const warn = options.onWarning ?? ((message: string) => console.warn(`stowage: ${message}`));
    this.control = new OutboxControl(options, () => this.#open(), warn);
    this.#opening = (async () => {
      const release = await ensureDir(options.dir).then(lockOutbox).catch((err: unknown) => Promise.reject(unusable(options.dir, err)));
      try {
        const entries = await OutboxEntries.open(options.dir, warn);
        const delivery = new Delivery(inner, entries, this.#keys, options, (entry, outcome) => this.control.record(entry, outcome));
        const held = await HeldUploads.open(options.dir, inner, { initialDelayMs: options.initialDelayMs ?? DEFAULT_INITIAL_DELAY_MS, maxDelayMs: options.maxDelayMs ?? DEFAULT_MAX_DELAY_MS, warn }).catch(async (err: unknown) => {
          await entries.close();
          throw err;
        });
        this.#entries = entries;
        delivery.schedule();
        return { entries, delivery, held, release };
      } catch (err) {
        await release();
        throw unusable(options.dir, err);
      }
    })();
    // Every operation awaits it and rejects with its error; this only keeps it from being unhandled.
    this.#opening.catch(() => undefined);
  }

  /** The outbox, once its folder is recovered and locked (the first call waits for that). */
  async #open(): Promise<{ entries: OutboxEntries; delivery: Delivery; held: HeldUploads }> {
    return this.#opening;
  }

  override async put(key: string, body: PutBody, opts: DriverPutOptions): Promise<WriteResult> {
    const { entries, delivery } = await this.#open();
    return this.#keys.run(key, async () => {
      const queued = entries.queuedOf(key);
      const capture = new BodyCapture(body, entries.paths.tmp, this.#budget);
      let stored = false;
      try {
        if (queued) {
          checkWritePreconditions(key, entryInfo(queued), opts);
          // It matched the queued version, which the backend does not have yet: it queues behind it, with its condition.
          if (opts.ifMatch !== undefined) return await this.#queue(capture, key, opts, queued.reason, queued);
        }
        try {
          const info = await this.inner.put(key, capture.body(), opts);
          stored = true;
          if (queued) await entries.supersede(queued);
          delivery.backendAnswered();
          return info;
        } catch (err) {
          if (capture.sourceError !== undefined || !isTemporary(err)) throw err;
          return await this.#queue(capture, key, opts, (err as StorageError).code, opts);
        }
      } finally {
        // Once stored, the caller need not wait for the temp copy's close and unlink (the
        // memory it held is given back at once); close() waits for them, and a temp file
        // they fail to remove is removed at the next start.
        if (stored) this.#cleanups.add(capture.discard());
        else await capture.discard();
      }
    });
  }

  override async putFile(key: string, path: string, opts: DriverPutOptions, checks: PutBodyChecks): Promise<WriteResult & Partial<PutFileResult>> {
    const { entries, delivery } = await this.#open();
    return this.#keys.run(key, async () => {
      const queued = entries.queuedOf(key);
      if (queued) checkWritePreconditions(key, entryInfo(queued), opts);
      if (!queued || opts.ifMatch === undefined) {
        try {
          const info = await this.inner.putFile(key, path, opts, checks);
          if (queued) await entries.supersede(queued);
          delivery.backendAnswered();
          return info;
        } catch (err) {
          if (!isTemporary(err)) throw err;
          return this.#queueFile(key, path, opts, checks, (err as StorageError).code, opts);
        }
      }
      return this.#queueFile(key, path, opts, checks, queued.reason, queued);
    });
  }

  /** Spools the file at `path` (the driver's own attempt did not take it from us). */
  async #queueFile(key: string, path: string, opts: DriverPutOptions, checks: PutBodyChecks, reason: string, conditions: Pick<EntryRecord, 'ifNoneMatch' | 'ifMatch'>): Promise<QueuedWrite> {
    const { entries } = await this.#open();
    const { handle } = await openRegularFile(path);
    const stream = handle.createReadStream({ highWaterMark: 1024 * 1024 });
    // Straight to a temp file: the file is there to be read, nothing needs keeping in memory.
    const capture = new BodyCapture(new PutBody(stream, { sha256: checks.sha256, maxSize: checks.maxSize, signal: checks.signal }), entries.paths.tmp, NO_MEMORY);
    try {
      return { ...(await this.#queue(capture, key, opts, reason, conditions)), resumedBytes: 0 } as QueuedWrite;
    } finally {
      stream.destroy();
      await capture.discard();
    }
  }

  /** Reads the rest of the captured body and queues it (see OutboxEntries.queue), within the disk cap. */
  async #queue(capture: BodyCapture, key: string, opts: DriverPutOptions, reason: string, conditions: Pick<EntryRecord, 'ifNoneMatch' | 'ifMatch'>): Promise<QueuedWrite> {
    const { entries, delivery } = await this.#open();
    const maxBytes = this.#options.maxBytes ?? DEFAULT_MAX_BYTES;
    let reserved = 0;
    const full = (size: number) =>
      new StorageError('E_QUOTA_EXCEEDED', `the outbox at ${this.#options.dir} is full (${entries.usedBytes - reserved} of ${maxBytes} bytes used, the write needs at least ${size}): it was not queued, and nothing was stored`, {
        key,
        details: { maxBytes, reason },
      });
    const fits = (size: number): boolean => {
      if (entries.usedBytes - reserved + size > maxBytes) return false;
      entries.reserve(size - reserved);
      reserved = size;
      return true;
    };
    try {
      const file = await capture.toFile(fits, full);
      const fields = { id: newEntryId(), key, queuedAt: new Date().toISOString(), reason, attributes: copyAttributes(opts), ifNoneMatch: conditions.ifNoneMatch, ifMatch: conditions.ifMatch };
      const entry = await entries.queue(file, fields, (step) => this.#options.onSpoolStep?.(step, key));
      delivery.queued(entry, reason);
      return queuedWrite(entry);
    } finally {
      entries.reserve(-reserved);
    }
  }

  override async stat(key: string): Promise<ObjectInfo> {
    const queued = (await this.#open()).entries.queuedOf(key);
    return queued ? entryInfo(queued) : this.inner.stat(key);
  }

  override async read(key: string, opts: DriverReadOptions): Promise<ObjectStream | NotModified> {
    const { entries } = await this.#open();
    const queued = entries.queuedOf(key);
    if (!queued) return this.inner.read(key, opts);
    const info = entryInfo(queued);
    const notModified = notModifiedIf(info, opts.ifNoneMatch);
    if (notModified) return notModified;
    const range = opts.range === undefined ? undefined : resolveRange(opts.range, info.size);
    let handle;
    try {
      handle = await open(entries.bodyPath(queued), 'r');
    } catch (err) {
      // Delivered (or superseded) since: read what is there now.
      if (errnoCode(err) === 'ENOENT' && entries.queuedOf(key) !== queued) return this.read(key, opts);
      throw err;
    }
    return { stream: handle.createReadStream({ start: range?.start, end: range?.end }), info, range };
  }

  override async delete(key: string): Promise<void> {
    await this.#supersede(key);
    return this.inner.delete(key);
  }

  override async deleteMany(keys: readonly string[]): Promise<number> {
    for (const key of keys) await this.#supersede(key);
    return this.inner.deleteMany(keys);
  }

  override async copy(from: string, to: string): Promise<ObjectInfo> {
    await this.#refuseQueuedSource(from, 'copy');
    return this.#replacing(to, () => this.inner.copy(from, to));
  }

  override async move(from: string, to: string): Promise<ObjectInfo> {
    await this.#refuseQueuedSource(from, 'move');
    return this.#replacing(to, () => this.inner.move(from, to));
  }

  override async copyFrom(source: Driver, from: string, to: string): Promise<ObjectInfo | undefined> {
    return this.#replacing(to, () => this.inner.copyFrom(source, from, to));
  }

  /** A presigned GET of a queued key would send the client to the backend, which does not have it yet: refused until it is delivered. */
  override async signedUrl(key: string, opts: DriverSignedUrlOptions): Promise<SignedUrl> {
    if (opts.method === 'GET') await this.#refuseQueuedSource(key, 'presign a download of');
    return this.inner.signedUrl(key, opts);
  }

  /** A session the backend cannot create now is created in the outbox's folder (see held.ts). */
  override async createSession(record: SessionRecord): Promise<SessionRecord> {
    const { held, delivery } = await this.#open();
    try {
      const created = await this.inner.createSession(record);
      delivery.backendAnswered();
      return created;
    } catch (err) {
      if (!isTemporary(err)) throw err;
      await this.#heldRoom(record.key, record.size ?? 0);
      return held.createSession(record);
    }
  }

  /** Held sessions count against the disk cap (see HeldUploads.checkRoom). */
  async #heldRoom(key: string, more: number): Promise<void> {
    const { entries, held } = await this.#open();
    await held.checkRoom(key, more, entries.usedBytes, this.#options.maxBytes ?? DEFAULT_MAX_BYTES);
  }

  /** Where the session `id` lives: held here, or in the backend. */
  async #sessionsOf(id: string): Promise<Driver> {
    const { held } = await this.#open();
    return held.holdsSession(id) ? held.sessions : this.inner;
  }

  override async getSession(id: string): Promise<SessionRecord> {
    return (await this.#sessionsOf(id)).getSession(id);
  }

  override async writeSession(id: string, body: SessionBody, opts: DriverSessionWriteOptions): Promise<SessionRecord> {
    const { held } = await this.#open();
    if (!held.holdsSession(id)) return this.inner.writeSession(id, body, opts);
    // A session of a deferred length counts what it holds: once the outbox is full, it takes no more.
    const record = await held.sessions.getSession(id);
    if (record.size === undefined) await this.#heldRoom(record.key, opts.size === undefined ? 1 : opts.size - record.offset);
    return held.sessions.writeSession(id, body, opts);
  }

  override async readSession(id: string, opts: { signal?: AbortSignal }): Promise<Readable> {
    return (await this.#sessionsOf(id)).readSession(id, opts);
  }

  /** A held session's bytes go to the outbox as a put: stored, or queued (a QueuedWrite); see HeldUploads.complete. */
  override async completeSession(id: string, opts: DriverSessionCompleteOptions): Promise<ObjectInfo> {
    const { held } = await this.#open();
    if (!held.holdsSession(id)) return this.inner.completeSession(id, opts);
    return held.complete(id, opts, {
      put: async (record, bytes, { sha256, ifNoneMatch, ifMatch }) =>
        (await this.put(record.key, new PutBody(bytes as Readable, { sha256, size: record.offset }), { ...copyAttributes(record), ifNoneMatch, ifMatch })) as ObjectInfo,
      stat: (key) => this.stat(key),
    });
  }

  override async abortSession(id: string): Promise<void> {
    const { held } = await this.#open();
    return held.holdsSession(id) ? held.abortSession(id) : this.inner.abortSession(id);
  }

  /** The held sessions and the backend's (one of an id held here too, left by a create that timed out, is listed once: the held one). */
  override async listSessions(prefix: string): Promise<SessionRecord[]> {
    const { held } = await this.#open();
    const mine = await held.sessions.listSessions(prefix);
    const ids = new Set(mine.map((r) => r.id));
    return [...mine, ...(await this.inner.listSessions(prefix)).filter((r) => !ids.has(r.id))];
  }

  /** See HeldUploads.putInternal: held while the backend cannot take it. */
  override async putInternal(name: string, data: Uint8Array, opts?: InternalPutOptions): Promise<void> {
    return (await this.#open()).held.putInternal(name, data, opts);
  }

  /** See HeldUploads.readInternal: the held version while there is one. */
  override async readInternal(name: string): Promise<Uint8Array | undefined> {
    return (await this.#open()).held.readInternal(name);
  }

  /** Removes the backend's copies and the held ones (see HeldUploads.deleteInternal). */
  override async deleteInternal(names: readonly string[]): Promise<void> {
    return (await this.#open()).held.deleteInternal(names);
  }

  /** While entries are pending the backend lacks their bytes, so no service may copy from it as if it were this driver. */
  override location(): ObjectLocation | undefined {
    return this.#entries && this.#entries.pending().length === 0 ? this.inner.location() : undefined;
  }

  /** Waits for the temp-file clean-ups, stops delivery (waiting for the deliveries in progress), closes the journal, frees the folder, then closes the inner driver. */
  override async close(): Promise<void> {
    const opened = await this.#opening.catch(() => undefined);
    await this.#cleanups.settled();
    if (opened) {
      await opened.held.close();
      await opened.delivery.close();
      await opened.entries.close();
      await opened.release();
    }
    await this.inner.close();
  }

  /** Drops the pending entry of `key`, if any: a delete replaces it. */
  async #supersede(key: string): Promise<void> {
    const { entries } = await this.#open();
    if (!entries.queuedOf(key)) return;
    await this.#keys.run(key, async () => {
      const queued = entries.queuedOf(key);
      if (queued) await entries.supersede(queued);
    });
  }

  /** Runs a copy onto `to` under its mutex; once it stored, a queued version of `to` is replaced. */
  async #replacing<T extends ObjectInfo | undefined>(to: string, copy: () => Promise<T>): Promise<T> {
    const { entries } = await this.#open();
    return this.#keys.run(to, async () => {
      const info = await copy();
      const queued = entries.queuedOf(to);
      if (info && queued) await entries.supersede(queued);
      return info;
    });
  }

  /** A copy or move of a queued key would copy the backend's older version (or nothing): refused until it is delivered. */
  async #refuseQueuedSource(from: string, operation: string): Promise<void> {
    if (!(await this.#open()).entries.queuedOf(from)) return;
    throw new StorageError('E_UNAVAILABLE', `cannot ${operation} ${JSON.stringify(from)} yet: its latest write is queued in the outbox, not delivered`, { key: from });
  }
}

/** A failure to open the outbox folder: a StorageError as it is (another owner), else E_CONFIG_INVALID naming the folder. */
function unusable(dir: string, err: unknown): StorageError {
  return err instanceof StorageError ? err : new StorageError('E_CONFIG_INVALID', `the outbox folder ${dir} cannot be used: ${errorMessage(err)}`, { cause: err });
}

async function ensureDir(dir: string): Promise<string> {
  await mkdir(dir, { recursive: true });
  return dir;
}

function checkOptions(options: OutboxOptions): void {
  if (typeof options?.dir !== 'string' || options.dir === '') throw new StorageError('E_CONFIG_INVALID', 'outbox.dir must be a folder path');
  if (options.maxBytes !== undefined && !(Number.isSafeInteger(options.maxBytes) && options.maxBytes > 0)) throw new StorageError('E_CONFIG_INVALID', `outbox.maxBytes must be a whole number of bytes > 0, got ${String(options.maxBytes)}`);
  for (const name of ['memoryBytes', 'initialDelayMs', 'maxDelayMs', 'concurrency'] as const) {
    const value = options[name];
    if (value !== undefined && !(Number.isSafeInteger(value) && value >= (name === 'concurrency' ? 1 : 0))) throw new StorageError('E_CONFIG_INVALID', `outbox.${name} must be a whole number, got ${String(value)}`);
  }
}

/**
 * Wraps `driver` in an outbox (see {@link OutboxLayer}): writes the backend cannot take
 * now are spooled in `options.dir` and delivered later, and resolve a `QueuedWrite`.
 * The folder is recovered and locked in the background; the first operation waits for
 * that (and rejects if another live process owns the folder).
 */
export function withOutbox(driver: Driver, options: OutboxOptions): OutboxLayer {
  return new OutboxLayer(driver, options);
}
