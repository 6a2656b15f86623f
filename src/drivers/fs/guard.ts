/**
 * What the fs driver may open, follow and write through under its root.
 *
 * - Only regular files are objects. Files are opened non-blocking (a FIFO cannot stall
 *   the event loop or a thread) and checked by fstat before a byte is read; FIFOs,
 *   sockets and device nodes read as not found and are never listed. (Checking before
 *   the open would cost every read a system call; of these, only a device node can do
 *   anything when opened, and planting one takes CAP_MKNOD.)
 * - By default no symlink is followed, anywhere in a key's path: a link under
 *   `users/43/` leading to `../42` must not hand user 43 the files of user 42. With
 *   `followSymlinks`, links whose target stays inside the root (and outside `.stowage/`)
 *   are followed; any link leading out is refused either way.
 *
 * Reads check the file they actually opened: on Linux the kernel names the open
 * descriptor's path (`/proc/self/fd/N`), so a path swapped between the check and the
 * open cannot slip through. That readlink replaces a realpath, so a read costs as many
 * system calls as before. Elsewhere the path is resolved right after opening.
 */
import { existsSync, type Stats } from 'node:fs';
import { lstat, mkdir, realpath, stat } from 'node:fs/promises';
import { dirname, join, sep } from 'node:path';
import { StorageError } from '../../core/errors.js';
import { notFound } from '../../core/objects.js';
import { errnoCode, unlessErrno } from './errors.js';
import type { FsLayout } from './layout.js';
import type { ReadIo } from './read-io.js';

/** Where the kernel names open descriptors, when it does (Linux with /proc mounted). */
const FD_PATHS = process.platform === 'linux' && existsSync('/proc/self/fd') ? '/proc/self/fd' : undefined;
/** How often a write re-creates folders that concurrent deletes pruned under it. */
export const PRUNE_RACE_ATTEMPTS = 100;

/**
 * A path naming exactly the file open at `fd` (for copies by the kernel, which take
 * paths): the descriptor's own path on Linux, else `path` itself.
 */
export function openedPath(fd: number, path: string): string {
  return FD_PATHS ? `${FD_PATHS}/${fd}` : path;
}

/**
 * The kernel marks the path of an open file that has since been unlinked, e.g. replaced
 * by a commit (rename) after we opened it: the name it was opened by is what counts.
 */
function withoutDeletedMark(path: string): string {
  return path.endsWith(DELETED_MARK) ? path.slice(0, -DELETED_MARK.length) : path;
}
const DELETED_MARK = ' (deleted)';

/** Errors that mean "nothing openable is there": missing, a file in the path, a link refused, a socket. */
function nothingThere(err: unknown): boolean {
  const code = errnoCode(err);
  return code === 'ENOENT' || code === 'ENOTDIR' || code === 'ELOOP' || code === 'ENXIO';
}

/** An open object file and what fstat said about it. */
export interface OpenedObject {
  fd: number;
  stats: Stats;
}

/** Applies the symlink and file-type policy to one root's paths. */
export class PathGuard {
  readonly #layout: FsLayout;
  /** Follow symlinks that stay inside the root (off by default). */
  readonly follow: boolean;

  constructor(layout: FsLayout, followSymlinks: boolean) {
    this.#layout = layout;
    this.follow = followSymlinks;
  }

  /** True when `real` is where the policy lets the lexical `path` lead. */
  #allowed(real: string, path: string): boolean {
    return this.follow ? this.#layout.holdsData(real) : real === path;
  }

  /**
   * Opens the object file at `path` (the key's data path) for reading: E_NOT_FOUND when
   * it is missing, not a regular file, or reached through a link the policy refuses.
   */
  async openObject(path: string, key: string, io: ReadIo): Promise<OpenedObject> {
    let fd: number;
    try {
      fd = await io.open(path, this.follow);
    } catch (err) {
      throw nothingThere(err) ? notFound(key) : err;
    }
    try {
      const stats = await io.fstat(fd);
      if (!stats.isFile()) throw notFound(key);
      const real = FD_PATHS ? withoutDeletedMark(await io.readlink(`${FD_PATHS}/${fd}`)) : await io.realpath(path);
      if (!this.#allowed(real, path)) throw notFound(key);
      return { fd, stats };
    } catch (err) {
      await io.close(fd).catch(() => undefined);
      throw nothingThere(err) ? notFound(key) : err;
    }
  }

  /** Stats the object at `path` without opening it; E_NOT_FOUND as for {@link openObject}. */
  async statObject(path: string, key: string, io: ReadIo): Promise<Stats> {
    try {
      const real = await io.realpath(path);
      if (!this.#allowed(real, path)) throw notFound(key);
      // Without links lstat is stat, and a link swapped in since the realpath is refused.
      const stats = this.follow ? await io.stat(real) : await io.lstat(path);
      if (!stats.isFile()) throw notFound(key);
      return stats;
    } catch (err) {
      throw nothingThere(err) ? notFound(key) : err;
    }
  }

  /** The stat that validates a cache hit: it must not follow a symlink swapped in at the key. */
  probe(path: string, io: ReadIo): Promise<Stats> {
    return this.follow ? io.stat(path) : io.lstat(path);
  }

  /** True when something at `stats` is an object under the policy (a regular file; a link too when following). */
  isObjectEntry(stats: Stats): boolean {
    return stats.isFile() || (this.follow && stats.isSymbolicLink());
  }

  /** True when the folder holding `path` is reached the way the policy allows, so a delete there stays inside. */
  async parentAllowed(path: string): Promise<boolean> {
    const parent = dirname(path);
    if (parent === this.#layout.root) return true;
    try {
      const real = await realpath(parent);
      return this.follow ? this.#layout.holdsData(real) : real === parent;
    } catch {
      return false;
    }
  }

  /**
   * Creates the folders above a key's data file, one at a time, so no folder is ever
   * made through a refused link (a recursive mkdir would follow it first and ask
   * afterwards). A file in the way is E_ALREADY_EXISTS naming it; a refused link is
   * E_ACCESS_DENIED. Folders pruned by concurrent deletes meanwhile are made again.
   */
  async ensureDataParent(key: string): Promise<void> {
    const layout = this.#layout;
    const parent = dirname(layout.dataPath(key));
    if (parent === layout.root) return;
    try {
      // The common case, one call: the folder exists (a trailing "/" makes a file ENOTDIR),
      // and the policy allows its path.
      if (this.#allowedFolder(await realpath(`${parent}${sep}`), parent)) return;
      throw this.#linkRefused(key);
    } catch (err) {
      if (err instanceof StorageError) throw err;
      if (errnoCode(err) !== 'ENOENT' && errnoCode(err) !== 'ENOTDIR') throw err;
    }
    const segments = key.split('/').slice(0, -1);
    for (let attempt = 0; attempt < PRUNE_RACE_ATTEMPTS; attempt++) {
      if (await this.#makeFolders(key, segments)) return;
    }
    throw new StorageError('E_UNAVAILABLE', `cannot store ${JSON.stringify(key)}: its folders kept being removed by concurrent deletes`, { key });
  }

  #allowedFolder(real: string, path: string): boolean {
    return this.follow ? real === this.#layout.root || this.#layout.holdsData(real) : real === path;
  }

  #linkRefused(key: string): StorageError {
    const why = this.follow ? 'a symlink leading out of the storage root' : 'a symlink, and symlinks are not followed (see followSymlinks)';
    return new StorageError('E_ACCESS_DENIED', `cannot store ${JSON.stringify(key)}: its folder is reached through ${why}`, { key });
  }

  /** One pass over the key's folders, root first; false when a concurrent delete removed one under us. */
  async #makeFolders(key: string, segments: string[]): Promise<boolean> {
    const layout = this.#layout;
    let dir = layout.root;
    for (let i = 0; i < segments.length; i++) {
      dir = join(dir, segments[i] as string);
      try {
        await mkdir(dir);
        continue;
      } catch (err) {
        const code = errnoCode(err);
        if (code === 'ENOENT') return false;
        if (code !== 'EEXIST' && code !== 'ENOTDIR') throw err;
      }
      // Gone (or its parent replaced) since the mkdir: a concurrent delete; start again.
      const st = await unlessErrno(lstat(dir), 'ENOENT', 'ENOTDIR');
      if (st === undefined) return false;
      if (st.isDirectory()) continue;
      const blocker = segments.slice(0, i + 1).join('/');
      if (st.isSymbolicLink()) {
        if (!this.follow) throw this.#linkRefused(key);
        const real = await realpath(dir).catch(() => undefined);
        if (real === undefined || !layout.holdsData(real)) throw this.#linkRefused(key);
        if ((await stat(real)).isDirectory()) continue;
      }
      throw new StorageError('E_ALREADY_EXISTS', `cannot store ${JSON.stringify(key)}: ${JSON.stringify(blocker)} is an object, and on a filesystem a key cannot also be a folder`, { key });
    }
    return true;
  }
}
