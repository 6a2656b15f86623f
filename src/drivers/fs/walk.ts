/**
 * Walks the data tree in UTF-8 byte order of keys. Sorting each folder's entries by
 * name, with `/` appended to folder names, makes a depth-first walk emit keys in
 * exactly the order S3 lists them. Subtrees outside the prefix or before the cursor
 * are never read, and with delimiter `/` a folder becomes one common prefix without
 * being walked (only checked for holding at least one object).
 *
 * Only regular files are objects: FIFOs, sockets and device nodes are left out, and so
 * are symlinks unless the driver follows them. Symlinked folders are never entered.
 */
import type { Dirent } from 'node:fs';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { compareKeys, isAddressableKey } from '../../core/keys.js';
import type { ListCursor, ListEntry } from '../../core/listing.js';
import type { ObjectInfo } from '../../core/types.js';
import { INTERNAL_DIR } from './layout.js';

/** What the walk needs from the driver. */
export interface WalkContext {
  root: string;
  prefix: string;
  delimiter?: string;
  cursor?: ListCursor;
  /** List symlinks as candidate objects (the driver follows links inside the root). */
  followLinks: boolean;
  /**
   * Loads the info of a key found on disk (`isLink` when it is a symlink, which must be
   * checked to lead to a file inside the root); undefined when it vanished or is not an object.
   */
  load: (key: string, isLink: boolean) => Promise<ObjectInfo | undefined>;
}

interface Item {
  name: string;
  /** Sort name: folders get a trailing "/" so "a-b" < "a/" < "a0", as in key order. */
  sortName: string;
  kind: 'file' | 'dir' | 'link';
}

/** Yields list entries in byte order for the keys under `ctx.prefix`. */
export async function* walkKeys(ctx: WalkContext): AsyncGenerator<ListEntry> {
  yield* walkDir(ctx, ctx.root, '');
}

async function* walkDir(ctx: WalkContext, dir: string, dirKey: string): AsyncGenerator<ListEntry> {
  for (const item of await sortedItems(dir, dirKey === '', ctx.followLinks)) {
    const key = dirKey + item.name;
    if (item.kind === 'dir') {
      const sub = `${key}/`;
      if (!overlapsPrefix(sub, ctx.prefix) || coveredByCursor(sub, ctx.cursor)) continue;
      const folded = ctx.delimiter === '/' && sub.length > ctx.prefix.length && sub.indexOf('/', ctx.prefix.length) === sub.length - 1;
      if (folded) {
        if (await holdsObject(join(dir, item.name), ctx.followLinks)) yield { prefix: sub };
      } else {
        yield* walkDir(ctx, join(dir, item.name), sub);
      }
    } else if (key.startsWith(ctx.prefix) && isAddressableKey(key)) {
      // (Files dropped in by other tools may have names no key can address: left out.)
      yield { key, load: () => ctx.load(key, item.kind === 'link') };
    }
  }
}

async function sortedItems(dir: string, atRoot: boolean, followLinks: boolean): Promise<Item[]> {
  let entries: Dirent[];
  try {
    entries = await readdir(dir, { withFileTypes: true });
  } catch {
    return []; // removed or replaced while we walked: nothing to list there
  }
  const items: Item[] = [];
  for (const entry of entries) {
    if (atRoot && entry.name === INTERNAL_DIR) continue;
    const kind = entry.isDirectory() ? 'dir' : entry.isFile() ? 'file' : followLinks && entry.isSymbolicLink() ? 'link' : undefined;
    if (kind) items.push({ name: entry.name, sortName: kind === 'dir' ? `${entry.name}/` : entry.name, kind });
  }
  return items.sort((a, b) => compareKeys(a.sortName, b.sortName));
}

/** True when keys under folder `sub` (ending in "/") can start with `prefix`. */
function overlapsPrefix(sub: string, prefix: string): boolean {
  return sub.startsWith(prefix) || prefix.startsWith(sub);
}

/** True when every key under folder `sub` is at or before the cursor. */
function coveredByCursor(sub: string, cursor: ListCursor | undefined): boolean {
  if (!cursor) return false;
  if (cursor.skipPrefix && sub.startsWith(cursor.after)) return true;
  return !cursor.after.startsWith(sub) && compareKeys(sub, cursor.after) < 0;
}

/**
 * True when the folder holds at least one file (or a link, when followed) somewhere
 * below it; empty folders are not prefixes.
 */
async function holdsObject(dir: string, followLinks: boolean): Promise<boolean> {
  let entries: Dirent[];
  try {
    entries = await readdir(dir, { withFileTypes: true });
  } catch {
    return false;
  }
  if (entries.some((e) => e.isFile() || (followLinks && e.isSymbolicLink()))) return true;
  for (const entry of entries) if (entry.isDirectory() && (await holdsObject(join(dir, entry.name), followLinks))) return true;
  return false;
}
