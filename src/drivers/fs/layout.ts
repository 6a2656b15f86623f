/**
 * Where the filesystem driver keeps things under its root:
 *
 *   <root>/<key>                     the object's bytes (a browsable mirror of the keys)
 *   <root>/.stowage/meta/<key>       its sidecar (content type, metadata, SHA-256)
 *   <root>/.stowage/tmp/<host>-<pid>/ this process's temp files, renamed into place
 *   <root>/.stowage/locks/           commit lock files
 *   <root>/.stowage/sessions/        upload sessions (see sessions.ts)
 *   <root>/.stowage/internal/        internal files (see internal-files.ts)
 *
 * Temp files live inside the root so the final rename never crosses a filesystem
 * (which would make it a non-atomic copy). Nothing here is created before the first
 * write: reading a plain folder leaves it byte for byte as it was.
 */
import { randomUUID } from 'node:crypto';
import { constants } from 'node:fs';
import { access, mkdir, readdir, realpath, rm, rmdir, stat } from 'node:fs/promises';
import { hostname } from 'node:os';
import { dirname, join, resolve, sep } from 'node:path';
import { StorageError } from '../../core/errors.js';
import { checkNotReserved, RESERVED_SEGMENT } from '../../core/keys.js';
import { processAlive } from '../../core/local-disk.js';
import { errnoCode, fsError } from './errors.js';

/** The hidden folder under the root that holds Stowage's own files. */
export const INTERNAL_DIR = RESERVED_SEGMENT;
/** Most bytes one path component may have on common filesystems (ext4, XFS, APFS, NTFS). */
export const MAX_SEGMENT_BYTES = 255;
/** Other hosts' temp folders are removed once this old (we cannot tell if their process lives). */
const FOREIGN_TEMP_MAX_AGE_MS = 24 * 3600 * 1000;

/** Rejects keys the filesystem cannot hold: the reserved `.stowage/` area and over-long segments. */
export function checkKeyFits(key: string): void {
  checkNotReserved(key, 'filesystem');
  // A UTF-16 code unit is at most 3 UTF-8 bytes: short keys cannot have a long segment.
  if (key.length * 3 <= MAX_SEGMENT_BYTES) return;
  const long = key.split('/').find((s) => Buffer.byteLength(s) > MAX_SEGMENT_BYTES);
  if (long !== undefined) {
    throw new StorageError('E_INVALID_KEY', `invalid key ${JSON.stringify(key)}: a segment is ${Buffer.byteLength(long)} bytes; the filesystem allows ${MAX_SEGMENT_BYTES}`, { key });
  }
}

/** Resolved paths of one storage root. */
export class FsLayout {
  /** The root's real path (symlinks resolved). */
  readonly root: string;
  readonly metaRoot: string;
  readonly tmpDir: string;
  readonly locksDir: string;
  /** Upload sessions (see sessions.ts). */
  readonly sessionsDir: string;
  /** Internal files (see internal-files.ts). */
  readonly internalFilesDir: string;
  /** `<root>/.stowage`, which no key may reach. */
  readonly #internal: string;

  private constructor(root: string) {
    this.root = root;
    this.#internal = join(root, INTERNAL_DIR);
    this.metaRoot = join(this.#internal, 'meta');
    this.tmpDir = join(this.#internal, 'tmp', `${hostname()}-${process.pid}`);
    this.locksDir = join(this.#internal, 'locks');
    this.sessionsDir = join(this.#internal, 'sessions');
    this.internalFilesDir = join(this.#internal, 'internal');
  }

  /**
   * Finds an existing root and resolves it, creating nothing: reads, listings and
   * checks must leave a folder exactly as they found it. A missing root is
   * E_BUCKET_NOT_FOUND naming the folder (a typo in a location shows at once).
   */
  static async locate(rootOption: string): Promise<FsLayout> {
    const wanted = resolve(rootOption);
    try {
      const root = await realpath(wanted);
      if (!(await stat(root)).isDirectory()) throw Object.assign(new Error('not a directory'), { code: 'ENOTDIR' });
      return new FsLayout(root);
    } catch (err) {
      const code = errnoCode(err);
      if (code === 'ENOENT') {
        // The first write creates it (details say so, for callers that are about to write).
        throw new StorageError('E_BUCKET_NOT_FOUND', `storage root ${wanted} does not exist`, { cause: err, details: { root: wanted, createdByFirstWrite: true } });
      }
      if (code === 'ENOTDIR' || code === 'EEXIST') {
        throw new StorageError('E_CONFIG_INVALID', `storage root ${wanted} exists but is not a directory`, { cause: err });
      }
      throw fsError(err, `cannot use ${wanted} as the storage root`);
    }
  }

  /** Creates the root folder (and its parents) when missing; the first write does this. */
  static async create(rootOption: string): Promise<void> {
    const wanted = resolve(rootOption);
    try {
      await mkdir(wanted, { recursive: true });
    } catch (err) {
      if (errnoCode(err) === 'ENOTDIR' || errnoCode(err) === 'EEXIST') {
        throw new StorageError('E_CONFIG_INVALID', `storage root ${wanted} exists but is not a directory`, { cause: err });
      }
      throw fsError(err, `cannot create the storage root ${wanted}`);
    }
  }

  /**
   * Prepares the internal folders for writing and removes temp files left by processes
   * that died mid-write. Runs before a driver's first write, never for reads.
   */
  async prepareForWrites(): Promise<void> {
    try {
      // One level at a time: a recursive mkdir on a read-only filesystem reports ENOENT, not EROFS.
      for (const dir of [this.#internal, this.metaRoot, this.locksDir, dirname(this.tmpDir)]) await makeDir(dir);
      await this.#removeStaleTemps();
      await makeDir(this.tmpDir);
    } catch (err) {
      throw fsError(err, `cannot prepare ${this.#internal}`);
    }
  }

  /**
   * Checks the root, and `.stowage/` once it exists, may be written to, without writing:
   * access(2) reports a read-only filesystem (EROFS) or a permission problem, and a
   * plain folder stays exactly as it was.
   */
  async checkWritable(): Promise<void> {
    for (const folder of [this.root, this.#internal]) {
      try {
        await access(folder, constants.W_OK);
      } catch (err) {
        if (errnoCode(err) === 'ENOENT' && folder === this.#internal) continue; // made by the first write
        throw fsError(err, `cannot write to ${folder}`);
      }
    }
  }

  /** Deletes temp folders of dead processes on this host, and old ones of other hosts. */
  async #removeStaleTemps(): Promise<void> {
    const tmpRoot = dirname(this.tmpDir);
    const host = hostname();
    for (const name of await readdir(tmpRoot)) {
      const at = name.lastIndexOf('-');
      const pid = Number(name.slice(at + 1));
      const path = join(tmpRoot, name);
      const stale =
        name.slice(0, at) === host
          ? pid !== process.pid && !processAlive(pid)
          : Date.now() - (await stat(path).then((s) => s.mtimeMs, () => Date.now())) > FOREIGN_TEMP_MAX_AGE_MS;
      if (stale) await rm(path, { recursive: true, force: true });
    }
  }

  /** The data file of a key. Keys are normalized, so joining cannot leave the root. */
  dataPath(key: string): string {
    // Normalized keys have no empty, "." or ".." segments: on POSIX, joining is concatenation.
    return sep === '/' ? `${this.root}/${key}` : join(this.root, ...key.split('/'));
  }

  /** The sidecar file of a key. */
  metaPath(key: string): string {
    return join(this.metaRoot, ...key.split('/'));
  }

  /** A fresh temp file path in this process's temp folder. */
  tempPath(suffix = ''): string {
    return join(this.tmpDir, randomUUID() + suffix);
  }

  /** True when a real (symlink-free) path lies in the data tree: under the root, outside `.stowage/`. */
  holdsData(real: string): boolean {
    return real.startsWith(this.root + sep) && real !== this.#internal && !real.startsWith(this.#internal + sep);
  }

  /** Removes folders left empty between `dir` and `stopAt` (exclusive), as S3 has no empty folders. */
  async pruneEmptyDirs(dir: string, stopAt: string): Promise<void> {
    for (let current = dir; current.startsWith(stopAt + sep); current = dirname(current)) {
      try {
        await rmdir(current);
      } catch {
        return; // not empty, gone, or busy: stop climbing
      }
    }
  }
}

/** Creates a folder whose parent exists; one that is already there is fine. */
async function makeDir(path: string): Promise<void> {
  try {
    await mkdir(path);
  } catch (err) {
    if (errnoCode(err) !== 'EEXIST') throw err;
  }
}
