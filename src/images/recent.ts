/**
 * The renditions a storage served lately, kept in memory within a byte budget, least
 * recently used out first. A rendition is immutable for its internal file name, the
 * original's digest and the variant's settings, which every entry carries and every
 * lookup compares: an entry is never stale, only unused. So a hot thumbnail costs one
 * stat of its original (needed anyway, to know its current bytes) and no read.
 */

/** One rendition as the cache keeps it. */
export interface RecentEntry {
  /** The original's digest the rendition was made from. */
  source: string;
  /** The digest of the variant's settings it was made with. */
  settings: string;
  data: Buffer;
  contentType: string;
  width: number;
  height: number;
}

/** An entry with its ETag, computed once: a hot rendition is served many times. */
export interface RecentRendition extends RecentEntry {
  etag: string;
}

/** Renditions larger than this are not kept: the budget is for thumbnails and previews. */
const LARGEST = 1024 * 1024;

/** A least-recently-used map of renditions by internal file name, within `budget` bytes. */
export class RecentVariants {
  readonly #budget: number;
  readonly #entries = new Map<string, RecentRendition>();
  #bytes = 0;

  constructor(budget: number) {
    this.#budget = budget;
  }

  /** The entry for `file` made from `source` with `settings`, or undefined (a stale one is dropped). */
  get(file: string, source: string, settings: string): RecentRendition | undefined {
    const entry = this.#entries.get(file);
    if (entry === undefined) return undefined;
    this.#entries.delete(file);
    if (entry.source !== source || entry.settings !== settings) {
      this.#bytes -= entry.data.length;
      return undefined;
    }
    this.#entries.set(file, entry); // now the most recently used
    return entry;
  }

  /** Keeps `entry` for `file`, evicting the least recently used past the budget. */
  set(file: string, entry: RecentRendition): void {
    if (entry.data.length > LARGEST || entry.data.length > this.#budget) return;
    this.drop(file);
    this.#entries.set(file, entry);
    this.#bytes += entry.data.length;
    for (const [oldest, old] of this.#entries) {
      if (this.#bytes <= this.#budget) break;
      this.#entries.delete(oldest);
      this.#bytes -= old.data.length;
    }
  }

  /** Forgets `file` (its original was deleted or moved). */
  drop(file: string): void {
    const entry = this.#entries.get(file);
    if (entry === undefined) return;
    this.#entries.delete(file);
    this.#bytes -= entry.data.length;
  }
}
