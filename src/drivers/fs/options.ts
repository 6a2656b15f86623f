/** Options of the filesystem driver, their defaults, and their validation. */
import { StorageError } from '../../core/errors.js';
import type { ReadIoMode } from './read-io.js';

/** Options of the filesystem driver. */
export interface FsDriverOptions {
  /**
   * The folder that holds the objects. Default `./uploads`. The first write creates it
   * (and `verify({ createBucket: true })`); reads, listings and checks of a missing
   * folder fail with E_BUCKET_NOT_FOUND and create nothing.
   */
  root?: string;
  /** fsync files before renaming them into place (default true). Off trades crash safety for speed. */
  fsync?: boolean;
  /**
   * How reads, stats and listings run their system calls (default `sync`): `sync` on the
   * event loop, about 30x quicker per small read on a local disk; `async` in the thread
   * pool, never blocking the event loop, for network filesystems. See read-io.ts.
   */
  readIo?: ReadIoMode;
  /**
   * Memory for the small-object cache, in bytes: objects up to 64 KiB that are read
   * are kept, and served after one stat proves the file unchanged (see cache.ts).
   * Default 32 MiB with `readIo: 'sync'`, 0 (off) with `async`, whose network
   * filesystems may stamp files by another machine's clock. 0 turns it off.
   */
  cacheBytes?: number;
  /**
   * Follow symlinks inside the root whose target stays inside it (default false: no
   * symlink is followed anywhere in a key's path, and links are not objects). Turning
   * this on breaks prefix isolation: a link under `users/43/` leading to `users/42/`
   * makes user 42's files readable and writable under user 43's keys. Links leading out
   * of the root are refused either way.
   */
  followSymlinks?: boolean;
}

/** Default memory of the small-object cache on local disks. */
export const DEFAULT_CACHE_BYTES = 32 * 1024 * 1024;

/** The options with their defaults filled in; E_CONFIG_INVALID naming a bad one. */
export function resolveFsOptions(options: FsDriverOptions): Required<FsDriverOptions> {
  const readIo = options.readIo ?? 'sync';
  if (readIo !== 'sync' && readIo !== 'async') throw new StorageError('E_CONFIG_INVALID', `readIo must be "sync" or "async", got ${JSON.stringify(readIo)}`);
  const cacheBytes = options.cacheBytes ?? (readIo === 'sync' ? DEFAULT_CACHE_BYTES : 0);
  if (!Number.isSafeInteger(cacheBytes) || cacheBytes < 0) {
    throw new StorageError('E_CONFIG_INVALID', `cacheBytes must be a whole number of bytes, 0 or more, got ${JSON.stringify(cacheBytes)}`);
  }
  return { root: options.root ?? './uploads', fsync: options.fsync ?? true, readIo, cacheBytes, followSymlinks: options.followSymlinks ?? false };
}
