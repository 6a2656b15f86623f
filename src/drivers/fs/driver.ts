/**
 * The local-filesystem driver, Stowage's embedded default.
 *
 * Writes stream into a temp file inside the root, are fsynced and renamed into
 * place, so a reader sees the old object or the new one, never a partial one, and a
 * failure or crash at any step leaves the previous version intact (see commit.ts).
 * See layout.ts for where files live, sidecar.ts for how metadata stays consistent
 * with the bytes, and guard.ts for which files may be opened and which links followed.
 * Nothing is created before the first write: reads leave a plain folder as it was.
 */
import { constants, type Stats } from 'node:fs';
import { copyFile, open, rm, stat } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Readable } from 'node:stream';
import type { PutBody, PutBodyChecks } from '../../core/body.js';
import { isStorageError, StorageError } from '../../core/errors.js';
import { collectPage, listStart } from '../../core/listing.js';
import { bufferedObject, checkWritePreconditions, copyAttributes, notFound, notModifiedIf, resolveRange, statOrUndefined, tooLarge } from '../../core/objects.js';
import type { DriverCapabilities, DriverListOptions, DriverPutOptions, DriverReadOptions, UnconditionalReadOptions } from '../../core/contract.js';
import type { ListPage, NotModified, ObjectInfo, ObjectStream, VerifyOptions } from '../../core/types.js';
import { BaseDriver, BASE_DRIVER_CAPABILITIES } from '../base.js';
import { SmallObjectCache, type CacheStats } from './cache.js';
import { commitMove, commitStaged, currentEntry, probeData, removeObject, type CommitContext } from './commit.js';
import { errnoCode, fsError } from './errors.js';
import { openedPath, PathGuard } from './guard.js';
import { copyHashed, statFile, writeBody } from './io.js';
import { checkKeyFits, FsLayout, MAX_SEGMENT_BYTES } from './layout.js';
import { KeyLocks } from './lock.js';
import { boundEntry, isBound, objectInfo, readSidecar, sealStaged, sidecarOf, type DataStats } from './sidecar.js';
import { resolveFsOptions, type FsDriverOptions } from './options.js';
import { readIo, type ReadIo } from './read-io.js';
import { fileCutShort, FileReadStream } from './read-stream.js';
import { walkKeys } from './walk.js';
import { FsSessions } from './sessions.js';
import { FsInternalFiles } from './internal-files.js';
import type { InternalFilesPage, InternalPutOptions } from '../../core/internal-files.js';
import type { DriverSessionCompleteOptions, DriverSessionWriteOptions, SessionBody, SessionRecord } from '../../core/sessions.js';

/** Read stream buffer size: large chunks keep per-chunk overhead low on big objects. */
const READ_HIGH_WATER_MARK = 1024 * 1024;
/** Objects up to this size are read in one call instead of streamed. */
const SMALL_READ_BYTES = 256 * 1024;
/**
 * A read the caller takes whole into memory (`bufferUpTo`) is one call up to this
 * size: in `sync` mode the call runs on the event loop, so past 8 MiB the stream's
 * asynchronous reads keep the loop free; in `async` mode the limit stays well under what
 * one read(2) moves on Linux (about 2 GiB).
 */
const BUFFERED_READ_BYTES = { sync: 8 * 1024 * 1024, async: 1024 * 1024 * 1024 };
/** How often a reader retries when its sidecar has no entry for the data it found. */
const BINDING_RETRIES = 5;
/** The same when the sidecar is there but describes other versions: up to about 150 ms. */
const BINDING_RETRIES_MISMATCH = 20;
/** Put sources are opened without blocking (a FIFO swapped in cannot stall a thread). */
const SOURCE_FLAGS = constants.O_RDONLY | (constants.O_NONBLOCK ?? 0);

/** The root found on disk, for reads. */
interface Located {
  layout: FsLayout;
  guard: PathGuard;
}

/** Stores objects as files under a root folder; `putFile` is a kernel copy and `move` a rename. */
export class FsDriver extends BaseDriver {
  readonly name = 'fs';
  readonly capabilities: DriverCapabilities = {
    ...BASE_DRIVER_CAPABILITIES,
    nativeMove: true,
    nativePutFile: true,
    conditionalWrites: true,
    rangeReads: true,
    keyIsPrefix: false,
    maxSegmentBytes: MAX_SEGMENT_BYTES,
    sessions: true,
    internalFiles: true,
  };
  readonly #rootOption: string;
  readonly #durable: boolean;
  readonly #follow: boolean;
  readonly #io: ReadIo;
  readonly #cache: SmallObjectCache | undefined;
  #located: Promise<Located> | undefined;
  /** What #located resolved to, so hot paths need not await it. */
  #opened: Located | undefined;
  /** The root prepared for writes (`.stowage/` made, stale temps removed), once. */
  #writable: Promise<CommitContext> | undefined;
  /** The upload sessions of the root, once one is used. */
  #sessionStore: FsSessions | undefined;
  #internalFiles: FsInternalFiles | undefined;

  constructor(options: FsDriverOptions = {}) {
    super();
    const { root, fsync, readIo: mode, cacheBytes, followSymlinks } = resolveFsOptions(options);
    this.#rootOption = root;
    this.#durable = fsync;
    this.#follow = followSymlinks;
    this.#io = readIo(mode);
    this.#cache = cacheBytes > 0 ? new SmallObjectCache(cacheBytes, this.#io, followSymlinks) : undefined;
  }

  /** Counters of the small-object cache (hits, misses, entries, bytes); undefined when it is off. */
  get cacheStats(): CacheStats | undefined {
    return this.#cache?.stats;
  }

  /**
   * Finds the root for reading, creating nothing: E_BUCKET_NOT_FOUND while it does not
   * exist (asked again on every call, so a root made later is found).
   */
  async #open(): Promise<Located> {
    this.#located ??= FsLayout.locate(this.#rootOption).then(
      (layout) => (this.#opened = { layout, guard: new PathGuard(layout, this.#follow) }),
      (err: unknown) => {
        this.#located = undefined;
        throw err;
      },
    );
    return this.#located;
  }

  /**
   * Prepares the root for writing on first use: creates it when `createRoot` (a put)
   * and it is missing, then Stowage's `.stowage/` area. A failure is reported on every
   * call until it succeeds.
   */
  async #openForWrites(createRoot: boolean): Promise<CommitContext> {
    if (!createRoot) await this.#open();
    this.#writable ??= (async () => {
      const { layout, guard } = await this.#open().catch(async (err: unknown) => {
        if (!isStorageError(err, 'E_BUCKET_NOT_FOUND')) throw err;
        await FsLayout.create(this.#rootOption);
        return this.#open();
      });
      await layout.prepareForWrites();
      return { layout, guard, locks: new KeyLocks(layout.locksDir), io: this.#io, durable: this.#durable };
    })().catch((err: unknown) => {
      this.#writable = undefined;
      throw err;
    });
    return this.#writable;
  }

  /** Streams the body to a temp file, then renames it into place under the key's lock. */
  async put(key: string, body: PutBody, opts: DriverPutOptions): Promise<ObjectInfo> {
    return this.#write(key, opts, async (dataTemp) => {
      const handle = await open(dataTemp, 'wx');
      try {
        await writeBody(handle, body);
      } finally {
        await handle.close();
      }
      return body.complete().sha256;
    });
  }

  /**
   * Stores a local file with the kernel's copy (copy_file_range, or a reflink where the
   * filesystem has them) while the file is hashed in parallel. The file is opened once,
   * without blocking, and must be a regular file; copy and hash both read that open
   * file, and its size and mtime are compared before and after, so a file changed
   * mid-copy is never stored under a checksum of other bytes.
   */
  override async putFile(key: string, path: string, opts: DriverPutOptions, checks: PutBodyChecks): Promise<ObjectInfo> {
    const source = await open(path, SOURCE_FLAGS).catch((err: unknown) => {
      throw new StorageError('E_INVALID_ARGUMENT', `cannot read file ${path}: ${errnoCode(err) ?? String(err)}`, { key, cause: err });
    });
    try {
      const before = await source.stat();
      if (!before.isFile()) throw new StorageError('E_INVALID_ARGUMENT', `cannot read file ${path}: not a regular file`, { key });
      if (checks.maxSize !== undefined && before.size > checks.maxSize) throw tooLarge(checks.maxSize);
      return await this.#write(key, opts, async (dataTemp) => {
        const sha256 = await copyHashed(source, openedPath(source.fd, path), dataTemp, checks);
        const after = await source.stat();
        if (after.size !== before.size || after.mtimeMs !== before.mtimeMs || (await stat(dataTemp)).size !== before.size) {
          throw new StorageError('E_INVALID_ARGUMENT', `${path} changed while it was being stored; nothing was stored`, { key });
        }
        return sha256;
      });
    } finally {
      await source.close();
    }
  }

  /**
   * The write path shared by put, putFile and copy: `produce` fills the data temp file
   * and returns its SHA-256; the file is then sealed and its sidecar staged (with the
   * entry of the version it replaces), and both are committed under the key's lock
   * (see commit.ts). On any failure both temps are removed.
   */
  async #write(key: string, opts: DriverPutOptions, produce: (dataTemp: string) => Promise<string | undefined>): Promise<ObjectInfo> {
    checkKeyFits(key);
    const ctx = await this.#openForWrites(true);
    const { layout, locks } = ctx;
    const dataTemp = layout.tempPath();
    const metaTemp = `${dataTemp}.meta`;
    try {
      const sha256 = await produce(dataTemp);
      const before = await probeData(ctx, key);
      const previous = await currentEntry(ctx, key, before);
      const staged = await sealStaged(dataTemp, metaTemp, { sha256, ...copyAttributes(opts) }, previous, this.#durable);
      return await locks.withLocks([key], async () => {
        if (opts.ifNoneMatch || opts.ifMatch !== undefined) checkWritePreconditions(key, await statOrUndefined(this, key), opts);
        const sidecar = await commitStaged(ctx, key, { dataTemp, metaTemp, sidecar: staged, before });
        return objectInfo(key, sidecar, sidecar);
      });
    } catch (err) {
      throw fsError(err, `cannot write ${JSON.stringify(key)} under ${layout.root}`, key);
    } finally {
      await Promise.all([rm(dataTemp, { force: true }), rm(metaTemp, { force: true })]);
    }
  }

  /**
   * Reads the info of the object at `key` through `probe` (a stat or fstat of the data
   * file), or takes what `known` gives after the probe (info the cache holds for the
   * very file probed). A sidecar without an entry for the data is re-read a few times, since a
   * commit may have landed between the probe and the sidecar read; if it still has
   * none, the file is described from itself.
   */
  async #describe(key: string, probe: () => Promise<DataStats>, known?: () => ObjectInfo | undefined): Promise<ObjectInfo> {
    const { layout } = this.#opened ?? (await this.#open());
    let stats = await probe();
    const cached = known?.();
    if (cached) return cached;
    let sidecar = await readSidecar(layout.metaPath(key), this.#io);
    // A sidecar that exists but describes other versions means commits landed between
    // the probe and the read: wait longer for it (a loaded machine can take tens of ms)
    // than for a missing sidecar, which is mostly a file put there by another tool.
    const retries = sidecar === undefined ? BINDING_RETRIES : BINDING_RETRIES_MISMATCH;
    for (let i = 0; i < retries && !isBound(sidecar, stats); i++) {
      await sleep(Math.min(i, 10));
      stats = await probe();
      sidecar = await readSidecar(layout.metaPath(key), this.#io);
    }
    return objectInfo(key, stats, sidecar);
  }

  /** Checks the key and finds the root, then waits for the event loop's turn (see ReadIo.turn). */
  async #prepare(key: string): Promise<Located> {
    checkKeyFits(key);
    const located = this.#opened ?? (await this.#open());
    await this.#io.turn();
    return located;
  }

  /** Returns the info; a missing key (or a folder, FIFO, refused link) rejects with E_NOT_FOUND. */
  async stat(key: string): Promise<ObjectInfo> {
    try {
      const { layout, guard } = await this.#prepare(key);
      const path = layout.dataPath(key);
      const cached = await this.#cache?.stat(key, path);
      if (cached) return cached;
      const startedAt = Date.now();
      let seen: Stats | undefined;
      const info = await this.#describe(key, async () => (seen = await guard.statObject(path, key, this.#io)));
      if (seen) this.#cache?.offerInfo(key, seen, info, startedAt);
      return info;
    } catch (err) {
      throw errnoCode(err) === 'ENOENT' ? notFound(key) : fsError(err, `cannot stat ${JSON.stringify(key)}`, key);
    }
  }

  /**
   * Opens the file and describes it by fstat of the open descriptor, so the stream and
   * the info belong to the same version even if the key is overwritten meanwhile.
   */
  read(key: string, opts: UnconditionalReadOptions): Promise<ObjectStream>;
  read(key: string, opts: DriverReadOptions): Promise<ObjectStream | NotModified>;
  async read(key: string, opts: DriverReadOptions): Promise<ObjectStream | NotModified> {
    const io = this.#io;
    let fd: number | undefined;
    try {
      const { layout, guard } = await this.#prepare(key);
      const path = layout.dataPath(key);
      const cached = await this.#cache?.read(key, path, opts);
      if (cached) return 'notModified' in cached ? cached : bufferedObject(cached.bytes, cached.info, cached.range);
      const readStartedAt = Date.now();
      let opened: Stats | undefined;
      const info = await this.#describe(key, async () => {
        // A retry of the binding check reopens the file. Forget the old descriptor before
        // closing it, so a failure below never closes it twice.
        const previous = fd;
        fd = undefined;
        if (previous !== undefined) await io.close(previous);
        const object = await guard.openObject(path, key, io);
        fd = object.fd;
        opened = object.stats;
        return { size: opened.size, mtimeMs: opened.mtimeMs };
      }, () => opened && this.#cache?.infoOf(key, opened)); // a recent stat's info of this very file (a variant's original): no sidecar read
      // The condition comes first: a current copy is not modified whatever the range.
      const unchanged = notModifiedIf(info, opts.ifNoneMatch);
      const range = opts.range && !unchanged ? resolveRange(opts.range, info.size) : undefined;
      const start = range?.start ?? 0;
      const length = (range ? range.end + 1 : info.size) - start;
      const open = fd as number;
      fd = undefined; // the small read, the stream or the not-modified answer closes it now
      if (unchanged) return await io.close(open).then(() => unchanged);
      if (length <= SMALL_READ_BYTES || length <= Math.min(opts.bufferUpTo ?? 0, BUFFERED_READ_BYTES[io.mode])) {
        // Small objects, and any the caller reads whole: one read on the open file beats a
        // stream's extra round trips and the copy of its chunks into one buffer.
        const bytes = await io.read(open, length, start, opts.bufferFor?.(length)).finally(() => io.close(open));
        if (bytes.length < length) throw fileCutShort(start + bytes.length, start + length);
        if (!range && opened) this.#cache?.offer(key, opened, info, bytes, readStartedAt);
        return bufferedObject(bytes, info, range);
      }
      const stream = new FileReadStream(open, { start, end: start + length, chunkBytes: READ_HIGH_WATER_MARK });
      return { stream, info, range, release: (chunk) => stream.release(chunk) };
    } catch (err) {
      if (fd !== undefined) await io.close(fd).catch(() => undefined);
      throw errnoCode(err) === 'ENOENT' ? notFound(key) : fsError(err, `cannot read ${JSON.stringify(key)}`, key);
    }
  }

  /**
   * Removes the object's file and sidecar, then folders left empty. A missing key
   * resolves; so does a key that is not an object (a folder, a FIFO, a symlink when
   * links are not followed): there is nothing to delete. The root must exist.
   */
  async delete(key: string): Promise<void> {
    checkKeyFits(key);
    const ctx = await this.#openForWrites(false);
    try {
      await ctx.locks.withLocks([key], () => removeObject(ctx, key));
    } catch (err) {
      throw fsError(err, `cannot delete ${JSON.stringify(key)}`, key);
    }
  }

  /** Deletes each key; missing keys count as deleted. */
  async deleteMany(keys: readonly string[]): Promise<number> {
    for (const key of keys) await this.delete(key);
    return keys.length;
  }

  /**
   * Copies with the kernel's copy into a temp file, then commits it like a write. The
   * source is opened once and described by fstat of that descriptor, so the copied
   * bytes and the copied checksum belong to one version even if `from` is overwritten
   * meanwhile; a source changed in place by another program fails the copy.
   */
  async copy(from: string, to: string): Promise<ObjectInfo> {
    const { layout, guard } = await this.#prepare(from);
    const io = this.#io;
    const path = layout.dataPath(from);
    const { fd, stats } = await guard.openObject(path, from, io).catch((err: unknown) => {
      throw fsError(err, `cannot read ${JSON.stringify(from)}`, from);
    });
    try {
      const source = await this.#describe(from, async () => ({ size: stats.size, mtimeMs: stats.mtimeMs }));
      if (from === to) return source;
      return await this.#write(to, copyAttributes(source), async (dataTemp) => {
        await copyFile(openedPath(fd, path), dataTemp);
        const after = await io.fstat(fd);
        if (after.size !== stats.size || after.mtimeMs !== stats.mtimeMs) {
          throw new StorageError('E_UNAVAILABLE', `${JSON.stringify(from)} was changed in place while it was copied`, { key: from });
        }
        return source.sha256;
      });
    } finally {
      await io.close(fd).catch(() => undefined);
    }
  }

  /**
   * Moves under both keys' locks: `to`'s new sidecar first (holding the moved object's
   * entry and `to`'s current one), then the data file itself is renamed (its mtime moves
   * with it, so the entry still binds), then `from`'s sidecar is removed. A failure
   * before the data rename leaves both keys as they were.
   */
  override async move(from: string, to: string): Promise<ObjectInfo> {
    checkKeyFits(from);
    checkKeyFits(to);
    const ctx = await this.#openForWrites(false);
    const { layout, guard, locks } = ctx;
    try {
      return await locks.withLocks([from, to], async () => {
        const st = await guard.statObject(layout.dataPath(from), from, this.#io);
        const entry = boundEntry(await readSidecar(layout.metaPath(from), this.#io), st);
        await commitMove(ctx, from, to, entry);
        return { ...objectInfo(from, st, entry && sidecarOf(entry, undefined)), key: to };
      });
    } catch (err) {
      throw errnoCode(err) === 'ENOENT' ? notFound(from) : fsError(err, `cannot move ${JSON.stringify(from)} to ${JSON.stringify(to)}`, from);
    }
  }

  /** Walks the tree in key order from the cursor; objects deleted mid-walk are left out. */
  async list(opts: DriverListOptions): Promise<ListPage> {
    const cursor = listStart(opts);
    const { layout } = await this.#open();
    const entries = walkKeys({
      root: layout.root,
      prefix: opts.prefix,
      delimiter: opts.delimiter,
      cursor,
      followLinks: this.#follow,
      // The walk never enters symlinked folders, so a plain file it finds lies inside the
      // root and needs no realpath check; a symlink (only listed when links are
      // followed) goes through the full stat.
      load: (key, isLink) => (isLink ? this.stat(key) : this.#describe(key, () => statFile(layout.dataPath(key), key, this.#io))).catch((err: unknown) => {
        if (err instanceof StorageError && (err.code === 'E_NOT_FOUND' || err.code === 'E_INVALID_KEY')) return undefined;
        if (errnoCode(err) === 'ENOENT') return undefined;
        throw err;
      }),
    });
    try {
      return await collectPage(entries, { prefix: opts.prefix, delimiter: opts.delimiter, cursor, limit: opts.limit });
    } catch (err) {
      throw fsError(err, `cannot list ${layout.root}`);
    }
  }

  /** Checks the root exists and may be written to, without writing (see FsLayout.checkWritable). */
  async check(): Promise<Record<string, unknown>> {
    const { layout } = await this.#open();
    await layout.checkWritable();
    return { root: layout.root };
  }

  /** Checks the root like `check`; with `createBucket`, first creates it and `.stowage/` when missing. */
  override async verify(opts: VerifyOptions): Promise<Record<string, unknown>> {
    if (opts.createBucket) await this.#openForWrites(true);
    return this.check();
  }

  /** Sessions live under `.stowage/sessions/` (see sessions.ts); the first one prepares the root for writes. */
  async #sessions<T>(what: string, fn: (sessions: FsSessions) => Promise<T>, key?: string): Promise<T> {
    const { layout } = await this.#openForWrites(true);
    try {
      return await fn((this.#sessionStore ??= new FsSessions(layout.sessionsDir, this.#durable)));
    } catch (err) {
      throw fsError(err, `cannot ${what} under ${layout.root}`, key);
    }
  }

  override async createSession(record: SessionRecord): Promise<SessionRecord> {
    checkKeyFits(record.key);
    return this.#sessions('start an upload session', (s) => s.create(record), record.key);
  }

  override async getSession(id: string): Promise<SessionRecord> {
    return this.#sessions('read an upload session', (s) => s.get(id));
  }

  override async writeSession(id: string, body: SessionBody, opts: DriverSessionWriteOptions): Promise<SessionRecord> {
    return this.#sessions('write an upload session', (s) => s.write(id, body, opts));
  }

  override async completeSession(id: string, opts: DriverSessionCompleteOptions): Promise<ObjectInfo> {
    return this.#sessions('complete an upload session', (s) => s.complete(id, opts, (key, putOpts, produce) => this.#write(key, putOpts, produce)));
  }

  override async abortSession(id: string): Promise<void> {
    return this.#sessions('abort an upload session', (s) => s.abort(id));
  }

  /** Streams the session's committed bytes from its data file. */
  override async readSession(id: string): Promise<Readable> {
    return this.#sessions('read an upload session', (s) => s.read(id));
  }

  /** Sessions of a root no write has made yet: none. */
  override async listSessions(prefix: string): Promise<SessionRecord[]> {
    const located = await this.#open().catch((err: unknown) => {
      if (isStorageError(err, 'E_BUCKET_NOT_FOUND')) return undefined;
      throw err;
    });
    return located ? (this.#sessionStore ??= new FsSessions(located.layout.sessionsDir, this.#durable)).list(prefix) : [];
  }

  /** Internal files under `.stowage/internal/` (see internal-files.ts); the first write prepares the root. */
  async #internal<T>(what: string, forWrite: boolean, fn: (files: FsInternalFiles) => Promise<T>, missingRoot: T): Promise<T> {
    const located = forWrite ? await this.#openForWrites(true) : await this.#open().catch((err: unknown) => {
      if (isStorageError(err, 'E_BUCKET_NOT_FOUND')) return undefined;
      throw err;
    });
    if (!located) return missingRoot;
    try {
      return await fn((this.#internalFiles ??= new FsInternalFiles(located.layout, this.#durable, this.#io)));
    } catch (err) {
      throw fsError(err, `cannot ${what} under ${located.layout.root}`);
    }
  }

  override async putInternal(name: string, data: Uint8Array, opts: InternalPutOptions = {}): Promise<void> {
    return this.#internal('write an internal file', true, (files) => files.put(name, data, opts.cache !== true), undefined);
  }

  override async readInternal(name: string): Promise<Uint8Array | undefined> {
    return this.#internal('read an internal file', false, (files) => files.read(name), undefined);
  }

  override async deleteInternal(names: readonly string[]): Promise<void> {
    return this.#internal('delete internal files', false, (files) => files.delete(names), undefined);
  }

  override async listInternal(prefix: string, cursor?: string): Promise<InternalFilesPage> {
    return this.#internal('list internal files', false, (files) => files.list(prefix, cursor), { names: [] });
  }
}
