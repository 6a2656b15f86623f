/**
 * Paging for drivers that enumerate keys themselves (fs, memory): delimiter
 * grouping, page limits and cursors. A cursor records the last item returned, so
 * the next page starts strictly after it: keys that exist throughout a listing are
 * never repeated or skipped, whatever is written between pages. Also the batching of
 * deletes that a listing feeds (`deleteMany({ prefix })`).
 */
import { StorageError } from './errors.js';
import { compareKeys } from './keys.js';
import type { Driver } from './contract.js';
import type { ListPage, ObjectInfo } from './types.js';

/** Keys deleted per driver call: S3's DeleteObjects limit, and a bound on memory elsewhere. */
const DELETE_BATCH = 1000;

/** The keys of a sequence of objects, as it comes. */
export async function* keysOf(objects: AsyncIterable<ObjectInfo>): AsyncGenerator<string> {
  for await (const info of objects) yield info.key;
}

/**
 * Deletes `keys` (normalized) through the driver, DELETE_BATCH at a time, and returns
 * how many were deleted. The keys may come from a listing as it pages: each batch is
 * deleted once full, so the listing is never held whole. `afterBatch` runs after each
 * batch is deleted (Storage removes their image variants there).
 */
export async function deleteInBatches(driver: Driver, keys: Iterable<string> | AsyncIterable<string>, afterBatch?: (keys: string[]) => Promise<void>): Promise<number> {
  let count = 0;
  let batch: string[] = [];
  const flush = async () => {
    count += await driver.deleteMany(batch);
    await afterBatch?.(batch);
    batch = [];
  };
  for await (const key of keys) {
    batch.push(key);
    if (batch.length === DELETE_BATCH) await flush();
  }
  if (batch.length > 0) await flush();
  return count;
}

/** Where the next page starts: after `after`, and past every key under it when it was a folded prefix. */
export interface ListCursor {
  after: string;
  /** True when `after` was a common prefix: every key starting with it was already covered. */
  skipPrefix: boolean;
}

/**
 * One entry from a driver's ordered enumeration: an object key with a loader for its
 * info (so folded keys are never loaded), or a prefix the driver folded itself.
 */
export type ListEntry = { key: string; load: () => Promise<ObjectInfo | undefined> } | { prefix: string };

/** Encodes a cursor as an opaque URL-safe string. */
export function encodeCursor(cursor: ListCursor): string {
  return Buffer.from(JSON.stringify([cursor.after, cursor.skipPrefix ? 1 : 0]), 'utf8').toString('base64url');
}

/** Decodes a cursor from {@link encodeCursor}; a malformed one rejects with E_INVALID_ARGUMENT. */
export function decodeCursor(cursor: string | undefined): ListCursor | undefined {
  if (cursor === undefined || cursor === '') return undefined;
  try {
    const parsed: unknown = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
    if (Array.isArray(parsed) && typeof parsed[0] === 'string' && (parsed[1] === 0 || parsed[1] === 1)) {
      return { after: parsed[0], skipPrefix: parsed[1] === 1 };
    }
  } catch {
    // fall through to the error below
  }
  throw new StorageError('E_INVALID_ARGUMENT', 'invalid list cursor: pass back the cursor of the previous page unchanged');
}

/** The cursor of a driver listing: the page cursor, else a start strictly after `startAfter`. */
export function listStart(opts: { cursor?: string; startAfter?: string }): ListCursor | undefined {
  return decodeCursor(opts.cursor) ?? (opts.startAfter === undefined ? undefined : { after: opts.startAfter, skipPrefix: false });
}

/** True when `key` comes after the cursor and is not inside a prefix it already covered. */
export function isAfterCursor(key: string, cursor: ListCursor | undefined): boolean {
  if (!cursor) return true;
  if (cursor.skipPrefix && key.startsWith(cursor.after)) return false;
  return compareKeys(key, cursor.after) > 0;
}

/** The common prefix `key` folds into under `delimiter`, or undefined when it stays an object. */
export function foldedPrefix(key: string, prefix: string, delimiter: string | undefined): string | undefined {
  if (!delimiter) return undefined;
  const at = key.indexOf(delimiter, prefix.length);
  return at === -1 ? undefined : key.slice(0, at + delimiter.length);
}

/** An item of a page being built: a folded prefix, or an object whose info is loading. */
type PageItem = { prefix: string } | { key: string; info: Promise<ObjectInfo | undefined> };

/**
 * Builds one page from entries in UTF-8 byte order that start with `prefix`. Entries
 * at or before the cursor are skipped, keys are folded into prefixes, and objects
 * that vanish before their info loads are left out. Infos of a page load concurrently
 * but are placed in order. Returns a cursor when another item follows.
 */
export async function collectPage(
  entries: AsyncIterable<ListEntry>,
  opts: { prefix: string; delimiter?: string; cursor: ListCursor | undefined; limit: number },
): Promise<ListPage> {
  const page: ListPage = { objects: [], prefixes: [] };
  const iterator = entries[Symbol.asyncIterator]();
  let lastFolded: string | undefined;

  const nextItem = async (): Promise<PageItem | undefined> => {
    for (;;) {
      const step = await iterator.next();
      if (step.done) return undefined;
      const entry = step.value;
      const folded = 'prefix' in entry ? entry.prefix : foldedPrefix(entry.key, opts.prefix, opts.delimiter);
      if (folded !== undefined) {
        // Sorted input keeps a prefix's keys together: only the first one is an item. A
        // prefix at or before the cursor was returned on an earlier page.
        if (folded === lastFolded || (opts.cursor && compareKeys(folded, opts.cursor.after) <= 0)) continue;
        lastFolded = folded;
        return { prefix: folded };
      }
      if (!('key' in entry) || !isAfterCursor(entry.key, opts.cursor)) continue;
      const info = entry.load();
      info.catch(() => undefined); // awaited in order below; this only marks it handled meanwhile
      return { key: entry.key, info };
    }
  };

  let last: ListCursor | undefined;
  let count = 0;
  while (count < opts.limit) {
    const batch: PageItem[] = [];
    let exhausted = false;
    while (batch.length < opts.limit - count) {
      const item = await nextItem();
      if (!item) {
        exhausted = true;
        break;
      }
      batch.push(item);
    }
    for (const item of batch) {
      if ('prefix' in item) {
        page.prefixes.push(item.prefix);
        last = { after: item.prefix, skipPrefix: true };
      } else {
        const info = await item.info;
        if (!info) continue; // deleted while we listed
        page.objects.push(info);
        last = { after: item.key, skipPrefix: false };
      }
      count++;
    }
    if (exhausted) return page;
  }
  if (last && (await nextItem())) page.cursor = encodeCursor(last);
  return page;
}
