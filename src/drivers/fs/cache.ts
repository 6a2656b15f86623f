/**
 * The fs driver's small-object cache: the bytes and info of recently read small
 * objects, so reading a hot object costs one stat instead of a realpath, an open, an
 * fstat, a read, a close and a sidecar read; and the info alone of larger objects
 * recently stat'ed, so a `stat` of a hot one (an image whose variants are served, say)
 * costs one stat instead of a realpath, a stat and a sidecar read (and a read of it right
 * after, the bytes alone). nginx keeps a similar cache of open files;
 * this one holds the bytes too, since small objects are what apps read most (avatars,
 * thumbnails, icons).
 *
 * Every hit is validated by a stat of the key's path: an entry is used only while the
 * path still leads to the same file (device and inode) with the same size, mtime and
 * ctime. Unless symlinks are followed, that stat is an lstat, so a symlink swapped in
 * at the key is a different inode (the link's own) and never served. (A folder above
 * the key swapped for a link to wherever the very same file was moved still matches,
 * as moving a folder leaves its files' ctimes alone: what is served is then exactly the
 * bytes that key held when they were read, unchanged since. Checking the whole path on
 * every hit would double the cost of a hit for no byte that key could not serve.) Our own writes replace a file by a rename (a new inode), a delete removes the
 * path, and any other writer moves ctime, which no one can set by hand. So there is
 * nothing to invalidate: a stale entry never matches and is dropped on its next lookup.
 * Reaching the same inode also keeps the driver's containment guarantee, since the entry
 * was made after the full realpath check of that very file.
 *
 * Timestamps have a granularity (a kernel tick on Linux, 2 s on FAT), so a file changed
 * in place twice within one tick could keep its ctime. As git does for its index ("racy
 * git"), a file is cached only when its ctime is at least {@link SETTLE_MS} older than
 * the read that fills the entry: any later change then gives it a different ctime.
 */
import type { Stats } from 'node:fs';
import { cloneInfo, notModifiedIf, resolveRange } from '../../core/objects.js';
import type { ByteRange, NotModified, ObjectInfo, ResolvedRange } from '../../core/types.js';
import type { ReadIo } from './read-io.js';

/** Objects up to this size are cached; larger ones stream from disk every time. */
export const CACHEABLE_BYTES = 64 * 1024;
/** What an entry of info alone counts against the budget: about its size in memory. */
const INFO_ENTRY_BYTES = 1024;
/** How much older than the filling read a file's ctime must be (covers FAT's 2 s timestamps). */
export const SETTLE_MS = 2000;

/** The identity and times of a file, as its stat reports them. */
type FileStamp = Pick<Stats, 'dev' | 'ino' | 'size' | 'mtimeMs' | 'ctimeMs'>;

interface Entry {
  stamp: FileStamp;
  info: ObjectInfo;
  /** The object's bytes; undefined for a larger object, of which only the info is kept (for `stat`). */
  bytes: Buffer | undefined;
  /** What the entry counts against the budget: its bytes, or INFO_ENTRY_BYTES. */
  cost: number;
  /** The check made in an event-loop turn, shared by the reads resumed in that turn. */
  check?: { turn: number; unchanged: Promise<boolean> };
}

/** What a cache hit gives: the caller's own copies, safe to change. */
export interface CachedRead {
  info: ObjectInfo;
  bytes: Buffer;
  range?: ResolvedRange;
}

/** Counters of a cache, for monitoring. */
export interface CacheStats {
  /** Reads and stats answered from the cache. */
  hits: number;
  /** Stats made to check hits: reads of one key resumed in the same event-loop turn share one. */
  checks: number;
  /** Lookups that went to disk: not cached, or changed on disk since. */
  misses: number;
  /** Objects cached now. */
  entries: number;
  /** Bytes the entries count against the budget: their content, or about 1 KiB for an entry of info alone. */
  bytes: number;
  /** The most bytes of content it holds. */
  maxBytes: number;
}

function sameFile(a: FileStamp, b: FileStamp): boolean {
  return a.ino === b.ino && a.dev === b.dev && a.size === b.size && a.mtimeMs === b.mtimeMs && a.ctimeMs === b.ctimeMs;
}

/** A byte-bounded least-recently-used cache of small objects, validated by stat on every hit. */
export class SmallObjectCache {
  readonly #maxBytes: number;
  readonly #io: ReadIo;
  /** The stat that validates a hit: lstat unless symlinks are followed. */
  readonly #probe: (path: string) => Promise<Stats>;
  /** In least-recently-used order: a hit moves its entry to the end. */
  readonly #entries = new Map<string, Entry>();
  #bytes = 0;
  #hits = 0;
  #checks = 0;
  #misses = 0;

  constructor(maxBytes: number, io: ReadIo, followSymlinks: boolean) {
    this.#maxBytes = maxBytes;
    this.#io = io;
    this.#probe = followSymlinks ? (path) => io.stat(path) : (path) => io.lstat(path);
  }

  /** The current counters. */
  get stats(): CacheStats {
    return { hits: this.#hits, checks: this.#checks, misses: this.#misses, entries: this.#entries.size, bytes: this.#bytes, maxBytes: this.#maxBytes };
  }

  /**
   * The object at `key` when its entry still matches the file at `path`; otherwise
   * undefined, and a stale entry is dropped. With `ifNoneMatch` its ETag, NotModified;
   * with `range`, the bytes of that range (E_RANGE_NOT_SATISFIABLE past the end, as a
   * read from disk would be).
   */
  async read(key: string, path: string, { range, ifNoneMatch }: { range?: ByteRange; ifNoneMatch?: string }): Promise<CachedRead | NotModified | undefined> {
    if (this.#entries.get(key)?.bytes === undefined) {
      this.#misses++; // none, or the info alone of a larger object: read from disk
      return undefined;
    }
    const entry = await this.#valid(key, path);
    if (!entry?.bytes) return undefined;
    const unchanged = notModifiedIf(entry.info, ifNoneMatch);
    if (unchanged) return unchanged;
    const resolved = range ? resolveRange(range, entry.info.size) : undefined;
    // Copies: callers own what they get, and the entry must survive whatever they do with it.
    const bytes = Buffer.from(resolved ? entry.bytes.subarray(resolved.start, resolved.end + 1) : entry.bytes);
    return { info: cloneInfo(entry.info), bytes, range: resolved };
  }

  /** The info of the object at `key` when its entry still matches the file at `path`. */
  async stat(key: string, path: string): Promise<ObjectInfo | undefined> {
    const entry = await this.#valid(key, path);
    return entry && cloneInfo(entry.info);
  }

  /**
   * The info of `key` when its entry was made from the very file whose stats are `stamp`
   * (the fstat of a file just opened for reading): a read of an object stat'ed moments
   * ago then needs no sidecar read. Counted neither a hit nor a miss: the read that asks
   * still goes to disk for the bytes.
   */
  infoOf(key: string, stamp: FileStamp): ObjectInfo | undefined {
    const entry = this.#entries.get(key);
    return entry && sameFile(entry.stamp, stamp) ? cloneInfo(entry.info) : undefined;
  }

  async #valid(key: string, path: string): Promise<Entry | undefined> {
    const entry = this.#entries.get(key);
    if (entry === undefined) {
      this.#misses++;
      return undefined;
    }
    // Reads resumed in one turn all arrived before it, so one stat in it speaks for all of
    // them: a hot key read by many clients at once costs one stat per turn.
    const turn = this.#io.currentTurn();
    let check = entry.check;
    if (turn === undefined || check?.turn !== turn) {
      this.#checks++;
      // A failed stat (gone, or no longer reachable) is a change: the disk path decides what to report.
      check = { turn: turn ?? -1, unchanged: this.#probe(path).then((current) => sameFile(entry.stamp, current), () => false) };
      if (turn !== undefined) entry.check = check;
    }
    const unchanged = await check.unchanged;
    // Readers sharing a check may find the entry already dropped or replaced by another.
    const current = this.#entries.get(key) === entry;
    if (!unchanged) {
      if (current) this.#drop(key, entry);
      this.#misses++;
      return undefined;
    }
    this.#hits++;
    if (current) {
      this.#entries.delete(key);
      this.#entries.set(key, entry);
    }
    return entry;
  }

  /**
   * Offers a whole object just read from a file with stats `stamp`, the read having
   * started at `readStartedAt` (epoch ms, taken before the file was opened). It is kept
   * when small enough and settled (see the module comment), evicting the least recently
   * used entries to stay within the budget.
   */
  offer(key: string, stamp: FileStamp, info: ObjectInfo, bytes: Buffer, readStartedAt: number): void {
    if (bytes.length > CACHEABLE_BYTES || bytes.length !== stamp.size) return;
    this.#keep(key, stamp, info, Buffer.from(bytes), bytes.length, readStartedAt);
  }

  /**
   * Offers the info of an object just described from a file with stats `stamp` (a `stat`
   * started at `statStartedAt`), so that the next `stat` of it costs one stat of the file
   * and no sidecar read. A small object's entry with its bytes is left as it is.
   */
  offerInfo(key: string, stamp: FileStamp, info: ObjectInfo, statStartedAt: number): void {
    if (this.#entries.get(key)?.bytes !== undefined) return;
    this.#keep(key, stamp, info, undefined, INFO_ENTRY_BYTES, statStartedAt);
  }

  /** Keeps an entry when settled (see the module comment), evicting the least recently used to stay within the budget. */
  #keep(key: string, stamp: FileStamp, info: ObjectInfo, bytes: Buffer | undefined, cost: number, startedAt: number): void {
    if (cost > this.#maxBytes || stamp.ctimeMs > startedAt - SETTLE_MS) return;
    const previous = this.#entries.get(key);
    if (previous) this.#drop(key, previous);
    const { dev, ino, size, mtimeMs, ctimeMs } = stamp;
    this.#entries.set(key, { stamp: { dev, ino, size, mtimeMs, ctimeMs }, info: cloneInfo(info), bytes, cost });
    this.#bytes += cost;
    for (const [oldest, entry] of this.#entries) {
      if (this.#bytes <= this.#maxBytes) break;
      this.#drop(oldest, entry);
    }
  }

  #drop(key: string, entry: Entry): void {
    this.#entries.delete(key);
    this.#bytes -= entry.cost;
  }
}
