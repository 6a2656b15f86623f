/**
 * The local-filesystem driver, Stowage's embedded default.
 *
 * Writes stream into a temp file inside the root, are fsynced and renamed into
 * place, so a reader sees the old object or the new one, never a partial one, and a
 * crash leaves the previous version intact. See layout.ts for where files live and
 * sidecar.ts for how metadata stays consistent with the bytes.
 */
import { createReadStream, type Stats } from 'node:fs';
import { copyFile, open, rename, rm, stat, unlink } from 'node:fs/promises';
import { dirname } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { PutBody, type PutBodyChecks } from '../../core/body.js';
import { StorageError } from '../../core/errors.js';
import { collectPage, listStart } from '../../core/listing.js';
import { bufferedObject, checkWritePreconditions, notFound, resolveRange, tooLarge } from '../../core/objects.js';
import type { Capabilities, Driver, DriverListOptions, DriverPutOptions, GetOptions, ListPage, ObjectInfo, ObjectStream } from '../../core/types.js';
import { SmallObjectCache, type CacheStats } from './cache.js';
import { errnoCode, fsError } from './errors.js';
import { renameOverDir, statFile, writeBody } from './io.js';
import { checkKeyFits, FsLayout, MAX_SEGMENT_BYTES } from './layout.js';
import { KeyLocks } from './lock.js';
import { isBound, objectInfo, readSidecar, sealStaged, type DataStats, type Sidecar } from './sidecar.js';
import { resolveFsOptions, type FsDriverOptions } from './options.js';
import { readIo, type ReadIo } from './read-io.js';
import { FileReadStream } from './read-stream.js';
import { walkKeys } from './walk.js';

/** Read stream buffer size: large chunks keep per-chunk overhead low on big objects. */
const READ_HIGH_WATER_MARK = 1024 * 1024;
/** Objects up to this size are read in one call instead of streamed. */
const SMALL_READ_BYTES = 256 * 1024;
/** How often copy starts over when the source is overwritten while it is copied. */
const COPY_ATTEMPTS = 3;
/** How often a reader retries when it caught a commit between its two renames. */
const BINDING_RETRIES = 5;
/** The same when the sidecar is there but describes another version: up to about 150 ms. */
const BINDING_RETRIES_MISMATCH = 20;

/** A sealed temp data file and its sidecar, ready to be renamed into place. */
interface StagedObject {
  dataTemp: string;
  metaTemp: string;
  sidecar: Sidecar;
}

/** Stores objects as files under a root folder. */
export class FsDriver implements Driver {
  readonly name = 'fs';
  readonly capabilities: Capabilities = {
    signedUrls: false,
    conditionalWrites: true,
    rangeReads: true,
    keyIsPrefix: false,
    maxSegmentBytes: MAX_SEGMENT_BYTES,
  };
  readonly #rootOption: string;
  readonly #durable: boolean;
  readonly #io: ReadIo;
  readonly #cache: SmallObjectCache | undefined;
  #ready: Promise<{ layout: FsLayout; locks: KeyLocks }> | undefined;
  /** What #ready resolved to, so hot paths need not await it. */
  #opened: { layout: FsLayout; locks: KeyLocks } | undefined;

  constructor(options: FsDriverOptions = {}) {
    const { root, fsync, readIo: mode, cacheBytes } = resolveFsOptions(options);
    this.#rootOption = root;
    this.#durable = fsync;
    this.#io = readIo(mode);
    this.#cache = cacheBytes > 0 ? new SmallObjectCache(cacheBytes) : undefined;
  }

  /** Counters of the small-object cache (hits, misses, entries, bytes); undefined when it is off. */
  get cacheStats(): CacheStats | undefined {
    return this.#cache?.stats;
  }

  /** Prepares the root on first use; a failure is reported on every call until it succeeds. */
  async #open(): Promise<{ layout: FsLayout; locks: KeyLocks }> {
    this.#ready ??= FsLayout.open(this.#rootOption).then(
      (layout) => (this.#opened = { layout, locks: new KeyLocks(layout.locksDir) }),
      (err: unknown) => {
        this.#ready = undefined;
        throw err;
      },
    );
    return this.#ready;
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
   * filesystem has them) while the file is hashed in parallel. The file's size and
   * mtime are compared before and after, so a file changed mid-copy is never stored
   * under a checksum of other bytes.
   */
  async putFile(key: string, path: string, opts: DriverPutOptions, checks: PutBodyChecks): Promise<ObjectInfo> {
    return this.#write(key, opts, async (dataTemp) => {
      const before = await stat(path);
      if (checks.maxSize !== undefined && before.size > checks.maxSize) throw tooLarge(checks.maxSize);
      const hashing = new PutBody(createReadStream(path, { highWaterMark: READ_HIGH_WATER_MARK }), checks);
      const drain = async () => {
        for await (const _chunk of hashing); // hashing happens as the body is consumed
      };
      // Wait for both even when one fails, so no copy is still writing when the temp is removed.
      const [copied, hashed] = await Promise.allSettled([copyFile(path, dataTemp), drain()]);
      if (copied.status === 'rejected') throw copied.reason;
      if (hashed.status === 'rejected') throw hashed.reason;
      const after = await stat(path);
      if (after.size !== before.size || after.mtimeMs !== before.mtimeMs || (await stat(dataTemp)).size !== before.size) {
        throw new StorageError('E_INVALID_ARGUMENT', `${path} changed while it was being stored; nothing was stored`, { key });
      }
      return hashing.complete().sha256;
    });
  }

  /**
   * The write path shared by put, putFile and copy: `produce` fills the data temp file
   * and returns its SHA-256; the file is then sealed, its sidecar written, and both are
   * committed under the key's lock. On any failure both temps are removed.
   */
  async #write(key: string, opts: DriverPutOptions, produce: (dataTemp: string) => Promise<string | undefined>): Promise<ObjectInfo> {
    checkKeyFits(key);
    const { layout } = await this.#open();
    const dataTemp = layout.tempPath();
    const metaTemp = `${dataTemp}.meta`;
    try {
      const sha256 = await produce(dataTemp);
      const { contentType, metadata, cacheControl, contentDisposition } = opts;
      const sidecar = await sealStaged(dataTemp, metaTemp, { sha256, contentType, metadata, cacheControl, contentDisposition }, this.#durable);
      return await this.#commit(key, { dataTemp, metaTemp, sidecar }, opts);
    } catch (err) {
      throw fsError(err, `cannot write ${JSON.stringify(key)} under ${layout.root}`, key);
    } finally {
      await Promise.all([rm(dataTemp, { force: true }), rm(metaTemp, { force: true })]);
    }
  }

  /** Renames data then sidecar into place, after checking preconditions, all under the key's lock. */
  async #commit(key: string, staged: StagedObject, conditions: { ifNoneMatch?: '*'; ifMatch?: string }): Promise<ObjectInfo> {
    const { layout, locks } = await this.#open();
    return locks.withLocks([key], async () => {
      if (conditions.ifNoneMatch || conditions.ifMatch !== undefined) {
        checkWritePreconditions(key, await this.#statOrUndefined(key), conditions);
      }
      await this.#placeData(layout, key, staged.dataTemp);
      await layout.ensureMetaParent(key);
      await renameOverDir(staged.metaTemp, layout.metaPath(key));
      return objectInfo(key, { size: staged.sidecar.size, mtimeMs: staged.sidecar.mtimeMs }, staged.sidecar);
    });
  }

  /** Renames a data temp onto the key's path, handling folders in the way and concurrent pruning. */
  async #placeData(layout: FsLayout, key: string, temp: string): Promise<void> {
    const target = layout.dataPath(key);
    for (let attempt = 0; ; attempt++) {
      await layout.ensureDataParent(key);
      try {
        await rename(temp, target);
        return;
      } catch (err) {
        const code = errnoCode(err);
        // A delete pruned the parent folder between mkdir and rename: make it again.
        if (code === 'ENOENT' && attempt < 3) continue;
        if (code === 'EISDIR' || code === 'ENOTEMPTY' || code === 'EEXIST') {
          throw new StorageError(
            'E_ALREADY_EXISTS',
            `cannot store ${JSON.stringify(key)}: it is a folder holding other objects, and on a filesystem a key cannot also be a folder`,
            { key, cause: err },
          );
        }
        throw err;
      }
    }
  }

  async #statOrUndefined(key: string): Promise<ObjectInfo | undefined> {
    try {
      return await this.stat(key);
    } catch (err) {
      if (err instanceof StorageError && err.code === 'E_NOT_FOUND') return undefined;
      throw err;
    }
  }

  /**
   * Reads the info of the object at `key` through `probe` (a stat or fstat of the data
   * file). A sidecar that does not match the data is re-read a few times, since a
   * writer may be between its two renames; if it still does not match, the file is
   * described from itself.
   */
  async #describe(key: string, probe: () => Promise<DataStats>): Promise<ObjectInfo> {
    const { layout } = await this.#open();
    let stats = await probe();
    let sidecar = await readSidecar(layout.metaPath(key), this.#io);
    // A sidecar that exists but belongs to another version means a commit is between its
    // two renames: wait longer for it (a loaded machine can take tens of ms) than for a
    // missing sidecar, which is mostly a file put there by another tool.
    const retries = sidecar === undefined ? BINDING_RETRIES : BINDING_RETRIES_MISMATCH;
    for (let i = 0; i < retries && !isBound(sidecar, stats); i++) {
      await sleep(Math.min(i, 10));
      stats = await probe();
      sidecar = await readSidecar(layout.metaPath(key), this.#io);
    }
    return objectInfo(key, stats, sidecar);
  }

  /** Checks the key and opens the root, then waits for the event loop's turn (see ReadIo.turn). */
  async #prepare(key: string): Promise<FsLayout> {
    checkKeyFits(key);
    const { layout } = this.#opened ?? (await this.#open());
    await this.#io.turn();
    return layout;
  }

  /** The real path of the key's data file, or E_NOT_FOUND (also for folders and symlinks leading out of the root). */
  async #resolve(layout: FsLayout, key: string): Promise<string> {
    const real = await layout.resolveInside(layout.dataPath(key), this.#io);
    if (real === undefined) throw notFound(key);
    return real;
  }

  async #locate(key: string): Promise<string> {
    return this.#resolve(await this.#prepare(key), key);
  }

  /** Returns the info; a missing key (or a folder) rejects with E_NOT_FOUND. */
  async stat(key: string): Promise<ObjectInfo> {
    try {
      const layout = await this.#prepare(key);
      const cached = await this.#cache?.stat(key, layout.dataPath(key), this.#io);
      if (cached) return cached;
      const real = await this.#resolve(layout, key);
      return await this.#describe(key, () => statFile(real, key, this.#io));
    } catch (err) {
      throw errnoCode(err) === 'ENOENT' ? notFound(key) : fsError(err, `cannot stat ${JSON.stringify(key)}`, key);
    }
  }

  /**
   * Opens the file and describes it by fstat of the open descriptor, so the stream and
   * the info belong to the same version even if the key is overwritten meanwhile.
   */
  async read(key: string, opts: GetOptions): Promise<ObjectStream> {
    const io = this.#io;
    let fd: number | undefined;
    try {
      const layout = await this.#prepare(key);
      const cached = await this.#cache?.read(key, layout.dataPath(key), io, opts.range);
      if (cached) return bufferedObject(cached.bytes, cached.info, cached.range);
      const readStartedAt = Date.now();
      const real = await this.#resolve(layout, key);
      let opened: Stats | undefined;
      const info = await this.#describe(key, async () => {
        // A retry of the binding check reopens the file. Forget the old descriptor before
        // closing it, so a failure below never closes it twice.
        const previous = fd;
        fd = undefined;
        if (previous !== undefined) await io.close(previous);
        fd = await io.open(real);
        const st = await io.fstat(fd);
        if (!st.isFile()) throw notFound(key);
        opened = st;
        return { size: st.size, mtimeMs: st.mtimeMs };
      });
      const range = opts.range ? resolveRange(opts.range, info.size) : undefined;
      const start = range?.start ?? 0;
      const length = (range ? range.end + 1 : info.size) - start;
      const open = fd as number;
      fd = undefined; // the small read or the stream closes it now
      if (length <= SMALL_READ_BYTES) {
        // Small objects: one read on the open file beats a stream's extra round trips.
        const bytes = await io.read(open, length, start).finally(() => io.close(open));
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

  /** Removes the data file and sidecar, then folders left empty. A missing key resolves. */
  async delete(key: string): Promise<void> {
    checkKeyFits(key);
    const { layout, locks } = await this.#open();
    try {
      await locks.withLocks([key], () => this.#remove(layout, key));
    } catch (err) {
      throw fsError(err, `cannot delete ${JSON.stringify(key)}`, key);
    }
  }

  async #remove(layout: FsLayout, key: string): Promise<void> {
    const data = layout.dataPath(key);
    // A key whose folder is a symlink out of the root names nothing we may delete.
    if (!(await layout.parentInside(data))) return;
    try {
      await unlink(data);
    } catch (err) {
      // Missing, or a folder of other objects (which is not this key): nothing to delete.
      const code = errnoCode(err);
      if (code !== 'ENOENT' && code !== 'ENOTDIR' && code !== 'EISDIR') throw err;
    }
    await rm(layout.metaPath(key), { force: true, recursive: false }).catch(() => undefined);
    await layout.pruneEmptyDirs(dirname(data), layout.root);
    await layout.pruneEmptyDirs(dirname(layout.metaPath(key)), layout.metaRoot);
  }

  /** Deletes each key; missing keys count as deleted. */
  async deleteMany(keys: readonly string[]): Promise<number> {
    for (const key of keys) await this.delete(key);
    return keys.length;
  }

  /**
   * Copies with the kernel's copy into a temp file, then commits it like a write. Each
   * attempt takes the source's info, copies, and checks the source is still that
   * version, so the copied bytes and the copied checksum always belong together.
   */
  async copy(from: string, to: string): Promise<ObjectInfo> {
    for (let attempt = 1; ; attempt++) {
      const source = await this.stat(from);
      if (from === to) return source;
      const { contentType, metadata, cacheControl, contentDisposition } = source;
      let changed = false;
      try {
        const copied = await this.#write(to, { contentType, metadata, cacheControl, contentDisposition }, async (dataTemp) => {
          await copyFile(await this.#locate(from), dataTemp);
          const after = await this.stat(from);
          changed = after.etag !== source.etag || after.size !== source.size;
          if (changed) throw new StorageError('E_UNAVAILABLE', `${JSON.stringify(from)} kept changing while it was copied`, { key: from });
          return source.sha256;
        });
        return copied;
      } catch (err) {
        if (errnoCode(err) === 'ENOENT') throw notFound(from);
        if (!changed || attempt === COPY_ATTEMPTS) throw err;
      }
    }
  }

  /** Renames data and sidecar under both keys' locks; the mtime moves with the file, so the binding holds. */
  async move(from: string, to: string): Promise<ObjectInfo> {
    checkKeyFits(to);
    const { layout, locks } = await this.#open();
    try {
      return await locks.withLocks([from, to], async () => {
        const real = await this.#locate(from);
        const st = await stat(real);
        if (!st.isFile()) throw notFound(from);
        const sidecar = await readSidecar(layout.metaPath(from), this.#io);
        const source = objectInfo(from, st, sidecar);
        // Rename the entry itself (a symlink stays a symlink), then its sidecar if it has one.
        await this.#placeData(layout, to, layout.dataPath(from));
        await layout.ensureMetaParent(to);
        if (isBound(sidecar, st)) await renameOverDir(layout.metaPath(from), layout.metaPath(to));
        else await rm(layout.metaPath(to), { force: true, recursive: true });
        await this.#remove(layout, from);
        return { ...source, key: to };
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
      // The walk never enters symlinked folders, so a plain file it finds lies inside the
      // root and needs no realpath check; a symlink goes through the full stat.
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

  /** Checks the root exists and a file can be written and removed there. */
  async check(): Promise<Record<string, unknown>> {
    const { layout } = await this.#open();
    const probe = layout.tempPath('.health');
    try {
      await (await open(probe, 'wx')).close();
      await unlink(probe);
    } catch (err) {
      throw fsError(err, `cannot write to ${layout.root}`);
    }
    return { root: layout.root };
  }
}
