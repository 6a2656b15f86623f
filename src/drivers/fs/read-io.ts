/**
 * The system calls of the fs driver's read path (realpath, readlink, stat, lstat,
 * open, fstat, read, close), in two modes with one interface, so the driver has one read path:
 *
 * - `sync` runs each call on the event loop, as nginx does. On a local disk these
 *   calls take microseconds when the data is in the page cache, while a hop through
 *   libuv's thread pool costs tens of microseconds each: a small GET is about 30x
 *   quicker. A slow disk or a network filesystem blocks every request meanwhile.
 * - `async` sends each call to the thread pool: never blocks the event loop, best on
 *   network filesystems (NFS, SMB, FUSE) or cold spinning disks.
 *
 * Writes are asynchronous, except a cache's small files in `sync` mode (see
 * FsInternalFiles.put). Large bodies are streamed asynchronously in both modes.
 */
import {
  close,
  closeSync,
  constants,
  fstat,
  fstatSync,
  lstat,
  lstatSync,
  open,
  openSync,
  read,
  readlink,
  readlinkSync,
  readSync,
  realpath,
  realpathSync,
  stat,
  statSync,
  type Stats,
} from 'node:fs';
import { promisify } from 'node:util';

/** How the fs driver's read path runs its system calls; see the module comment. */
export type ReadIoMode = 'sync' | 'async';

/** The read-path system calls, each returning a promise in both modes. */
export interface ReadIo {
  /** Which mode these calls run in. */
  readonly mode: ReadIoMode;
  /**
   * Awaited once at the start of each operation. In `sync` mode it waits for the event
   * loop's next turn: otherwise a loop of reads resolves in microtasks alone and
   * starves timers and I/O (a writer it waits for would never finish).
   */
  turn(): Promise<void>;
  /**
   * The number of the event-loop turn the caller runs in, the same for every caller that
   * `turn()` resumed together: a file checked by one of them is checked for all (they all
   * arrived before the check). Undefined in `async` mode, whose `turn()` does not wait.
   */
  currentTurn(): number | undefined;
  realpath(path: string): Promise<string>;
  readlink(path: string): Promise<string>;
  stat(path: string): Promise<Stats>;
  lstat(path: string): Promise<Stats>;
  /**
   * Opens a file for reading without ever blocking (O_NONBLOCK: a FIFO with no writer
   * opens at once instead of waiting for one) and, unless `followLink`, without
   * following a symlink in the last component (O_NOFOLLOW: ELOOP instead).
   */
  open(path: string, followLink: boolean): Promise<number>;
  fstat(fd: number): Promise<Stats>;
  /**
   * Reads up to `length` bytes at `position`; resolves the bytes read: a view of `into`
   * when given (at least `length` bytes), else of a new buffer.
   */
  read(fd: number, length: number, position: number, into?: Buffer): Promise<Buffer>;
  close(fd: number): Promise<void>;
}

const readAsync = promisify(read);
const openAsync = promisify(open);

// O_NOFOLLOW and O_NONBLOCK are POSIX; where a platform lacks one, its flag is 0.
const READ_FLAGS = constants.O_RDONLY | (constants.O_NONBLOCK ?? 0);
const NO_FOLLOW = constants.O_NOFOLLOW ?? 0;
const openFlags = (followLink: boolean) => (followLink ? READ_FLAGS : READ_FLAGS | NO_FOLLOW);

/** Thread-pool calls. */
const asyncIo: ReadIo = {
  mode: 'async',
  turn: async () => undefined,
  currentTurn: () => undefined,
  realpath: promisify(realpath.native),
  readlink: promisify(readlink),
  stat: promisify(stat),
  lstat: promisify(lstat),
  open: (path, followLink) => openAsync(path, openFlags(followLink)),
  fstat: promisify(fstat),
  read: async (fd, length, position, into) => {
    const buffer = into ?? Buffer.allocUnsafe(length);
    const { bytesRead } = await readAsync(fd, buffer, 0, length, position);
    return buffer.subarray(0, bytesRead);
  },
  close: promisify(close),
};

/** The next turn of the event loop, one promise shared by everyone waiting for it. */
let nextTurn: Promise<void> | undefined;
/** How many turns have resolved; see ReadIo.currentTurn. */
let turns = 0;

/** Event-loop calls; a failing call rejects like its asynchronous twin. */
const syncIo: ReadIo = {
  mode: 'sync',
  turn: () =>
    (nextTurn ??= new Promise((resolve) =>
      setImmediate(() => {
        nextTurn = undefined;
        turns++;
        resolve();
      }),
    )),
  currentTurn: () => turns,
  realpath: async (path) => realpathSync.native(path),
  readlink: async (path) => readlinkSync(path),
  stat: async (path) => statSync(path),
  lstat: async (path) => lstatSync(path),
  open: async (path, followLink) => openSync(path, openFlags(followLink)),
  fstat: async (fd) => fstatSync(fd),
  read: async (fd, length, position, into) => {
    const buffer = into ?? Buffer.allocUnsafe(length);
    return buffer.subarray(0, readSync(fd, buffer, 0, length, position));
  },
  close: async (fd) => closeSync(fd),
};

/** The calls of a mode. */
export function readIo(mode: ReadIoMode): ReadIo {
  return mode === 'sync' ? syncIo : asyncIo;
}
