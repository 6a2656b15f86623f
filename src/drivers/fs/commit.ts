/**
 * How the fs driver makes a new version visible, under the key's lock.
 *
 * A commit is two renames: the sidecar first, the data second. The new sidecar holds
 * two entries, the new version's and the one of the version on disk now (see
 * sidecar.ts), so at every instant a reader finds the entry for whichever data it
 * sees. What each failure leaves:
 *
 * - before the sidecar rename: nothing changed;
 * - between the renames (the data rename failed, or the process died): the previous
 *   data with its own entry, i.e. the previous version exactly as it was;
 * - after the data rename: the new version, whole and described. The commit reports
 *   success; only clean-up (a moved object's old sidecar, empty folders) may remain.
 *
 * Deletes prune folders left empty, which can remove a folder a concurrent write has
 * just made for itself: every step that needs a folder makes it again when it vanished,
 * so a legal write never fails because of a delete elsewhere.
 */
import type { Stats } from 'node:fs';
import { lstat, mkdir, readdir, rename, rm, rmdir, stat, unlink } from 'node:fs/promises';
import { dirname, join, relative, sep } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { StorageError } from '../../core/errors.js';
import { errnoCode, unlessErrno } from './errors.js';
import { PRUNE_RACE_ATTEMPTS, type PathGuard } from './guard.js';
import type { FsLayout } from './layout.js';
import type { KeyLocks } from './lock.js';
import type { ReadIo } from './read-io.js';
import { boundEntry, readSidecar, sidecarOf, writeSidecar, type Sidecar, type SidecarEntry } from './sidecar.js';

/** What a commit works with. */
export interface CommitContext {
  layout: FsLayout;
  guard: PathGuard;
  locks: KeyLocks;
  io: ReadIo;
  /** fsync sidecars written under the lock. */
  durable: boolean;
}

/** What is at a key's data path now, as far as a commit cares. */
export interface DataProbe {
  /** The object's stats; undefined when there is no object (missing, a link not followed, a FIFO, ...). */
  stats?: Stats;
  /** A folder stands there: the key holds other objects. */
  folder: boolean;
}

/** A sealed temp data file and its staged sidecar, with what was at the key when they were made. */
export interface StagedObject {
  dataTemp: string;
  metaTemp: string;
  sidecar: Sidecar;
  before: DataProbe;
}

/** E_ALREADY_EXISTS for a key that is a folder of other keys. */
export function folderConflict(key: string, cause?: unknown): StorageError {
  return new StorageError('E_ALREADY_EXISTS', `cannot store ${JSON.stringify(key)}: it is a folder holding other objects, and on a filesystem a key cannot also be a folder`, { key, cause });
}

/** Looks at the key's data path without following a link the policy refuses. */
export async function probeData(ctx: CommitContext, key: string): Promise<DataProbe> {
  const path = ctx.layout.dataPath(key);
  let st: Stats;
  try {
    st = await lstat(path);
    if (ctx.guard.follow && st.isSymbolicLink()) st = await stat(path);
  } catch (err) {
    const code = errnoCode(err);
    if (code === 'ENOENT' || code === 'ENOTDIR' || code === 'ELOOP') return { folder: false };
    throw err;
  }
  return { stats: st.isFile() ? st : undefined, folder: st.isDirectory() };
}

/** The sidecar entry of the object `probe` found, if it has one. */
export async function currentEntry(ctx: CommitContext, key: string, probe: DataProbe): Promise<SidecarEntry | undefined> {
  if (probe.stats === undefined) return undefined;
  return boundEntry(await readSidecar(ctx.layout.metaPath(key), ctx.io), probe.stats);
}

function sameData(a: DataProbe, b: DataProbe): boolean {
  if (a.stats === undefined || b.stats === undefined) return a.stats === b.stats;
  return a.stats.ino === b.stats.ino && a.stats.dev === b.stats.dev && a.stats.size === b.stats.size && a.stats.mtimeMs === b.stats.mtimeMs;
}

/**
 * Commits a staged write; the caller holds the key's lock. The sidecar was staged
 * outside the lock with the entry of the version then on disk; if another commit landed
 * since, it is rewritten for the version there now. Returns the committed sidecar.
 */
export async function commitStaged(ctx: CommitContext, key: string, staged: StagedObject): Promise<Sidecar> {
  await ctx.guard.ensureDataParent(key);
  const now = await probeData(ctx, key);
  if (now.folder) throw folderConflict(key);
  let sidecar = staged.sidecar;
  if (!sameData(now, staged.before)) {
    sidecar = sidecarOf(sidecar, await currentEntry(ctx, key, now));
    await writeSidecar(staged.metaTemp, sidecar, ctx.durable);
  }
  await placeSidecar(ctx, key, staged.metaTemp, [key]);
  await placeData(ctx, key, staged.dataTemp);
  return sidecar;
}

/**
 * Moves the object at `from` to `to`; the caller holds both keys' locks and has checked
 * `from` is an object whose sidecar entry is `entry`. The data file itself is renamed
 * (its mtime moves with it, so the entry still binds).
 */
export async function commitMove(ctx: CommitContext, from: string, to: string, entry: SidecarEntry | undefined): Promise<void> {
  const { layout } = ctx;
  await ctx.guard.ensureDataParent(to);
  const target = await probeData(ctx, to);
  if (target.folder) throw folderConflict(to);
  const previous = await currentEntry(ctx, to, target);
  const newest = entry ?? previous;
  if (newest !== undefined) {
    const metaTemp = layout.tempPath('.meta');
    try {
      await writeSidecar(metaTemp, sidecarOf(newest, entry && previous), ctx.durable);
      await placeSidecar(ctx, to, metaTemp, [from, to]);
    } finally {
      await rm(metaTemp, { force: true });
    }
  }
  await placeData(ctx, to, layout.dataPath(from));
  // The move has happened. What follows tidies up: a failure there changes nothing a
  // reader sees (a sidecar without its data describes nothing).
  await removeLeftovers(ctx, from).catch(() => undefined);
}

/**
 * Removes the object at `key`; the caller holds its lock. Only an object is removed: a
 * folder, a FIFO, or (unless following) a symlink is not an object, so there is nothing
 * to delete; with links followed, a link is removed itself, never what it leads to.
 */
export async function removeObject(ctx: CommitContext, key: string): Promise<void> {
  const path = ctx.layout.dataPath(key);
  if (!(await ctx.guard.parentAllowed(path))) return;
  const st = await unlessErrno(lstat(path), 'ENOENT', 'ENOTDIR');
  if (st !== undefined) {
    if (!ctx.guard.isObjectEntry(st)) return;
    await unlessErrno(unlink(path), 'ENOENT');
  }
  await removeLeftovers(ctx, key);
}

/** Removes a key's sidecar and the folders its removal left empty, in both trees. */
async function removeLeftovers(ctx: CommitContext, key: string): Promise<void> {
  const { layout } = ctx;
  await rm(layout.metaPath(key), { force: true }).catch(() => undefined);
  await layout.pruneEmptyDirs(dirname(layout.dataPath(key)), layout.root);
  await layout.pruneEmptyDirs(dirname(layout.metaPath(key)), layout.metaRoot);
}

/** Renames `source` onto the key's data path, making again folders a concurrent delete pruned. */
async function placeData(ctx: CommitContext, key: string, source: string): Promise<void> {
  const target = ctx.layout.dataPath(key);
  for (let attempt = 1; ; attempt++) {
    try {
      await rename(source, target);
      return;
    } catch (err) {
      const code = errnoCode(err);
      if ((code === 'ENOENT' || code === 'ENOTDIR') && attempt < PRUNE_RACE_ATTEMPTS) {
        // Either the source is gone (the caller reports that) or a folder was pruned.
        if (await lstat(source).then(() => false, () => true)) throw err;
        await ctx.guard.ensureDataParent(key);
        continue;
      }
      if (code === 'EISDIR' || code === 'ENOTEMPTY' || code === 'EEXIST') throw folderConflict(key, err);
      throw err;
    }
  }
}

/**
 * Renames a staged sidecar onto the key's sidecar path. Folders pruned meanwhile are
 * made again; a stale folder standing there (left from keys under it that are gone)
 * is cleared. `held` are the keys whose locks the caller holds.
 */
async function placeSidecar(ctx: CommitContext, key: string, metaTemp: string, held: string[]): Promise<void> {
  const target = ctx.layout.metaPath(key);
  for (let attempt = 1; attempt <= PRUNE_RACE_ATTEMPTS; attempt++) {
    await ensureMetaParent(ctx, key, held);
    try {
      await rename(metaTemp, target);
      return;
    } catch (err) {
      const code = errnoCode(err);
      if (code === 'EISDIR' || code === 'ENOTEMPTY' || code === 'EEXIST') await clearStaleMetaFolder(ctx, key);
      else if (code !== 'ENOENT' && code !== 'ENOTDIR') throw err;
    }
  }
  throw new StorageError('E_UNAVAILABLE', `cannot store ${JSON.stringify(key)}: its metadata folder kept being removed by concurrent deletes`, { key });
}

/**
 * Creates the folders above a sidecar. The data tree was just checked to have folders
 * there, so a file in the way is the stale sidecar of an ancestor key that is no longer
 * an object: it is removed under that key's lock (see withFreeLock), after checking again.
 */
async function ensureMetaParent(ctx: CommitContext, key: string, held: string[]): Promise<void> {
  const { layout } = ctx;
  const dir = dirname(layout.metaPath(key));
  try {
    await mkdir(dir, { recursive: true });
    return;
  } catch (err) {
    const code = errnoCode(err);
    if (code === 'ENOENT') return; // pruned while it was made: the rename fails and the caller tries again
    if (code !== 'ENOTDIR' && code !== 'EEXIST') throw err;
  }
  const segments = key.split('/').slice(0, -1);
  for (let i = 1; i <= segments.length; i++) {
    const ancestor = segments.slice(0, i).join('/');
    const st = await lstat(layout.metaPath(ancestor)).catch(() => undefined);
    if (st === undefined || st.isDirectory()) continue;
    const removeStale = async () => {
      const data = await lstat(layout.dataPath(ancestor)).catch(() => undefined);
      if (data && ctx.guard.isObjectEntry(data)) {
        throw new StorageError('E_ALREADY_EXISTS', `cannot store ${JSON.stringify(key)}: ${JSON.stringify(ancestor)} is an object, and on a filesystem a key cannot also be a folder`, { key });
      }
      await unlink(layout.metaPath(ancestor)).catch(() => undefined);
    };
    if (held.includes(ancestor)) await removeStale();
    else await withFreeLock(ctx, ancestor, key, removeStale);
  }
  await unlessErrno(mkdir(dir, { recursive: true }), 'ENOENT');
}

/** How often, about 1 s in all, a commit asks for another key's lock that is busy. */
const BUSY_LOCK_ATTEMPTS = 50;

/**
 * Runs `fn` under the lock of `other` while the caller holds its own key's lock. It
 * never waits for the lock (a commit holding `other` might wait for ours: a move
 * between the two keys takes both), it asks again for about a second, then gives up
 * with a retryable E_UNAVAILABLE.
 */
async function withFreeLock(ctx: CommitContext, other: string, key: string, fn: () => Promise<void>): Promise<void> {
  for (let attempt = 1; attempt <= BUSY_LOCK_ATTEMPTS; attempt++) {
    if (await ctx.locks.tryWithLock(other, fn)) return;
    await sleep(Math.min(attempt, 20));
  }
  throw new StorageError('E_UNAVAILABLE', `cannot store ${JSON.stringify(key)}: a concurrent write of ${JSON.stringify(other)} is in the way`, { key });
}

/**
 * Clears a folder standing at the key's sidecar path: the key is not a folder in the
 * data tree (just checked), so the sidecars under it belong to keys that are gone. Each
 * is removed under its key's lock, taken only if free: a commit under way there is
 * making the key a folder, so this write loses (E_ALREADY_EXISTS) instead of waiting
 * for it while holding this key's lock.
 */
async function clearStaleMetaFolder(ctx: CommitContext, key: string): Promise<void> {
  const { layout } = ctx;
  const folder = layout.metaPath(key);
  const entries = await readdir(folder, { recursive: true, withFileTypes: true }).catch(() => []);
  const folders = [folder];
  for (const entry of entries) {
    const path = join(entry.parentPath, entry.name);
    if (entry.isDirectory()) {
      folders.push(path);
      continue;
    }
    const child = `${key}/${relative(folder, path).split(sep).join('/')}`;
    const cleared = await ctx.locks.tryWithLock(child, async () => {
      if (await lstat(layout.dataPath(child)).then(() => true, () => false)) throw folderConflict(key);
      await unlink(path).catch(() => undefined);
    });
    if (!cleared) throw folderConflict(key);
  }
  // Deepest first; a folder that is not empty now holds a sidecar written meanwhile.
  for (const path of folders.sort((a, b) => b.length - a.length)) {
    await rmdir(path).catch((err: unknown) => {
      if (errnoCode(err) === 'ENOENT') return;
      throw errnoCode(err) === 'ENOTEMPTY' || errnoCode(err) === 'EEXIST' ? folderConflict(key, err) : err;
    });
  }
}
