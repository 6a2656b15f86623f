/**
 * Where the filesystem driver keeps things under its root:
 *
 *   <root>/<key>                     the object's bytes (a browsable mirror of the keys)
 *   <root>/.stowage/meta/<key>       its sidecar (content type, metadata, SHA-256)
 *   <root>/.stowage/tmp/<host>-<pid>/ this process's temp files, renamed into place
 *   <root>/.stowage/locks/           commit lock files
 *
 * Temp files live inside the root so the final rename never crosses a filesystem
 * (which would make it a non-atomic copy).
 */
import { randomUUID } from 'node:crypto';
import { lstat, mkdir, readdir, realpath, rm, rmdir, stat, unlink } from 'node:fs/promises';
import { hostname } from 'node:os';
import { dirname, join, resolve, sep } from 'node:path';
import { StorageError } from '../../core/errors.js';
import { errnoCode, fsError } from './errors.js';
import type { ReadIo } from './read-io.js';

/** The hidden folder under the root that holds Stowage's own files. */
export const INTERNAL_DIR = '.stowage';
/** Most bytes one path component may have on common filesystems (ext4, XFS, APFS, NTFS). */
export const MAX_SEGMENT_BYTES = 255;
/** Other hosts' temp folders are removed once this old (we cannot tell if their process lives). */
const FOREIGN_TEMP_MAX_AGE_MS = 24 * 3600 * 1000;

/** Rejects keys the filesystem cannot hold: the reserved `.stowage/` area and over-long segments. */
export function checkKeyFits(key: string): void {
  if (key === INTERNAL_DIR || key.startsWith(`${INTERNAL_DIR}/`)) {
    throw new StorageError('E_INVALID_KEY', `invalid key ${JSON.stringify(key)}: "${INTERNAL_DIR}/" is reserved by the filesystem backend`, { key });
  }
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

  private constructor(root: string) {
    this.root = root;
    const internal = join(root, INTERNAL_DIR);
    this.metaRoot = join(internal, 'meta');
    this.tmpDir = join(internal, 'tmp', `${hostname()}-${process.pid}`);
    this.locksDir = join(internal, 'locks');
  }

  /**
   * Creates the root (and parents) if needed, resolves it, prepares the internal
   * folders and removes temp files left by processes that died mid-write.
   */
  static async open(rootOption: string): Promise<FsLayout> {
    const wanted = resolve(rootOption);
    let root: string;
    try {
      await mkdir(wanted, { recursive: true });
      root = await realpath(wanted);
      if (!(await stat(root)).isDirectory()) throw Object.assign(new Error('not a directory'), { code: 'ENOTDIR' });
    } catch (err) {
      if (errnoCode(err) === 'ENOTDIR' || errnoCode(err) === 'EEXIST') {
        throw new StorageError('E_CONFIG_INVALID', `storage root ${wanted} exists but is not a directory`, { cause: err });
      }
      throw fsError(err, `cannot use ${wanted} as the storage root`);
    }
    const layout = new FsLayout(root);
    try {
      await mkdir(layout.metaRoot, { recursive: true });
      await mkdir(layout.locksDir, { recursive: true });
      await layout.#removeStaleTemps();
      await mkdir(layout.tmpDir, { recursive: true });
    } catch (err) {
      throw fsError(err, `cannot prepare ${join(root, INTERNAL_DIR)}`);
    }
    return layout;
  }

  /** Deletes temp folders of dead processes on this host, and old ones of other hosts. */
  async #removeStaleTemps(): Promise<void> {
    const tmpRoot = dirname(this.tmpDir);
    await mkdir(tmpRoot, { recursive: true });
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

  /**
   * The real path of `path` when it lies inside the root, following symlinks; undefined
   * when it does not exist or a symlink leads out of the root.
   */
  async resolveInside(path: string, io: ReadIo): Promise<string | undefined> {
    let real: string;
    try {
      real = await io.realpath(path);
    } catch (err) {
      const code = errnoCode(err);
      if (code === 'ENOENT' || code === 'ENOTDIR' || code === 'ELOOP') return undefined;
      throw err;
    }
    return real.startsWith(this.root + sep) && !real.startsWith(join(this.root, INTERNAL_DIR) + sep) ? real : undefined;
  }

  /**
   * True when the folder holding `path` really lies in the data tree, so a rename into
   * it or an unlink from it cannot follow a symlinked folder out of the root.
   */
  async parentInside(path: string): Promise<boolean> {
    let real: string;
    try {
      real = await realpath(dirname(path));
    } catch {
      return false;
    }
    return real === this.root || (real.startsWith(this.root + sep) && !real.startsWith(join(this.root, INTERNAL_DIR) + sep) && real !== join(this.root, INTERNAL_DIR));
  }

  /**
   * Creates the folders above a data file. When a file stands where a folder is
   * needed, the key cannot be stored on a filesystem: E_ALREADY_EXISTS naming it.
   */
  async ensureDataParent(key: string): Promise<void> {
    try {
      await mkdir(dirname(this.dataPath(key)), { recursive: true });
    } catch (err) {
      const code = errnoCode(err);
      if (code !== 'ENOTDIR' && code !== 'EEXIST') throw err;
      const segments = key.split('/');
      let blocker = segments[0] as string;
      for (let i = 1; i < segments.length; i++) {
        const isFile = await lstat(this.dataPath(blocker)).then((s) => !s.isDirectory(), () => false);
        if (isFile) break;
        blocker += `/${segments[i] as string}`;
      }
      throw new StorageError(
        'E_ALREADY_EXISTS',
        `cannot store ${JSON.stringify(key)}: ${JSON.stringify(blocker)} is an object, and on a filesystem a key cannot also be a folder`,
        { key, cause: err },
      );
    }
    if (!(await this.parentInside(this.dataPath(key)))) {
      throw new StorageError('E_ACCESS_DENIED', `cannot store ${JSON.stringify(key)}: its folder is a symlink leading out of the storage root`, { key });
    }
  }

  /**
   * Creates the folders above a sidecar. Sidecars mirror the data tree, which was just
   * checked, so a file in the way is a stale sidecar of a deleted object: remove it.
   */
  async ensureMetaParent(key: string): Promise<void> {
    const dir = dirname(this.metaPath(key));
    try {
      await mkdir(dir, { recursive: true });
    } catch (err) {
      const code = errnoCode(err);
      if (code !== 'ENOTDIR' && code !== 'EEXIST') throw err;
      let path = this.metaRoot;
      for (const segment of key.split('/').slice(0, -1)) {
        path = join(path, segment);
        const st = await lstat(path).catch(() => undefined);
        if (st && !st.isDirectory()) await unlink(path);
      }
      await mkdir(dir, { recursive: true });
    }
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

function processAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return errnoCode(err) === 'EPERM';
  }
}
