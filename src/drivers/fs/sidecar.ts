/**
 * Sidecars: the JSON file beside each object (under `.stowage/meta/`) holding what a
 * filesystem cannot: content type, user metadata, SHA-256 and headers.
 *
 * A sidecar entry is bound to its data file by size and modification time. Every
 * write gives its data file a fresh, randomized mtime before the rename, so an entry
 * that does not belong to the bytes on disk (a file edited by hand, a crash) is
 * detected and never reported as the truth.
 *
 * A commit renames the new sidecar into place first and the data second (see
 * commit.ts), so the sidecar carries two entries: the new version's, and in
 * `previous` the one of the version still on disk until the data rename. Whichever
 * data a reader finds, its entry is there; a commit that fails before its data rename
 * leaves the previous version described exactly as before.
 */
import { open, type FileHandle } from 'node:fs/promises';
import { etagFromSha256, guessContentType } from '../../core/objects.js';
import type { ObjectAttributes, ObjectInfo } from '../../core/types.js';
import type { ReadIo } from './read-io.js';

/** What a sidecar says about one version of the data. */
export interface SidecarEntry extends ObjectAttributes {
  size: number;
  mtimeMs: number;
  sha256?: string;
}

/**
 * What a sidecar file holds: the newest version's entry, and the entry of the version
 * it replaces. Older sidecars have no `previous`; they read the same.
 */
export interface Sidecar extends SidecarEntry {
  v: 1;
  previous?: SidecarEntry;
}

/** The size and mtime of a data file, as fstat reports them. */
export interface DataStats {
  size: number;
  mtimeMs: number;
}

/** Sidecars are small (metadata is capped at 2 KiB, twice); one read of this size gets all of one. */
const SIDECAR_READ_BYTES = 16 * 1024;
/** Anything longer is not a sidecar Stowage wrote (a device node planted there reads forever). */
const SIDECAR_MAX_BYTES = 16 * SIDECAR_READ_BYTES;

/**
 * Reads a sidecar with a single read (open, read, close: fewer round trips than
 * readFile, which matters for stat-heavy listings). Undefined when missing or
 * unreadable: the object is then described from its file alone. The open neither
 * blocks nor follows a link, so a FIFO or link planted in `.stowage/meta/` reads as
 * no sidecar (a FIFO yields nothing or EAGAIN, neither of which parses).
 */
export async function readSidecar(path: string, io: ReadIo): Promise<Sidecar | undefined> {
  try {
    const fd = await io.open(path, false);
    const parts: Buffer[] = [];
    try {
      for (let chunk = await io.read(fd, SIDECAR_READ_BYTES, 0); ; chunk = await io.read(fd, SIDECAR_READ_BYTES, parts.length * SIDECAR_READ_BYTES)) {
        parts.push(chunk);
        if (chunk.length < SIDECAR_READ_BYTES) break;
        if (parts.length * SIDECAR_READ_BYTES >= SIDECAR_MAX_BYTES) return undefined;
      }
    } finally {
      await io.close(fd);
    }
    const text = Buffer.concat(parts).toString('utf8');
    const parsed = JSON.parse(text) as Partial<Sidecar>;
    return parsed.v === 1 && typeof parsed.size === 'number' && typeof parsed.mtimeMs === 'number' ? (parsed as Sidecar) : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Seals a staged object: gives the data file its unique mtime, writes the sidecar that
 * binds to it (with `previous`, the entry of the version it replaces), and (when
 * `durable`) fsyncs both in parallel, so the journal can commit them together.
 * Returns the sidecar.
 */
export async function sealStaged(
  dataTemp: string,
  metaTemp: string,
  fields: Omit<SidecarEntry, 'size' | 'mtimeMs'>,
  previous: SidecarEntry | undefined,
  durable: boolean,
): Promise<Sidecar> {
  const handles: FileHandle[] = [];
  try {
    const data = await open(dataTemp, 'r+');
    handles.push(data);
    const mtime = uniqueMtime();
    await data.utimes(mtime, mtime);
    const st = await data.stat();
    const sidecar = sidecarOf({ size: st.size, mtimeMs: st.mtimeMs, ...fields }, previous);
    const meta = await open(metaTemp, 'wx');
    handles.push(meta);
    await meta.writeFile(JSON.stringify(sidecar));
    if (durable) await Promise.all([data.sync(), meta.sync()]);
    return sidecar;
  } finally {
    await Promise.all(handles.map((h) => h.close()));
  }
}

/** Writes (or rewrites) a sidecar file, fsynced when `durable`. */
export async function writeSidecar(path: string, sidecar: Sidecar, durable: boolean): Promise<void> {
  const handle = await open(path, 'w');
  try {
    await handle.writeFile(JSON.stringify(sidecar));
    if (durable) await handle.sync();
  } finally {
    await handle.close();
  }
}

/** One entry alone, without the file's version field or an older entry. */
function plainEntry(entry: SidecarEntry): SidecarEntry {
  const { previous: _older, v: _version, ...own } = entry as Sidecar;
  return own;
}

/** A sidecar whose newest version is `entry`, replacing the version described by `previous`. */
export function sidecarOf(entry: SidecarEntry, previous: SidecarEntry | undefined): Sidecar {
  return { v: 1, ...plainEntry(entry), previous: previous && plainEntry(previous) };
}

/** The entry describing exactly these bytes on disk (the newest, else the previous), if any. */
export function boundEntry(sidecar: Sidecar | undefined, stats: DataStats | undefined): SidecarEntry | undefined {
  if (sidecar === undefined || stats === undefined) return undefined;
  for (const entry of [sidecar, sidecar.previous]) {
    if (entry && entry.size === stats.size && entry.mtimeMs === stats.mtimeMs) return entry;
  }
  return undefined;
}

/** True when the sidecar has an entry for exactly these bytes on disk. */
export function isBound(sidecar: Sidecar | undefined, stats: DataStats): boolean {
  return boundEntry(sidecar, stats) !== undefined;
}

/**
 * An mtime (in seconds, for utimes) unique to this write: the current millisecond plus
 * random sub-millisecond nanoseconds, so two writes in one clock tick still differ.
 */
export function uniqueMtime(): number {
  return (Date.now() + Math.random() * 0.999) / 1000;
}

/**
 * The info of an object: from its sidecar when bound to the data, otherwise what the
 * file itself tells (no SHA-256, type guessed from the key, ETag from size and mtime).
 */
export function objectInfo(key: string, stats: DataStats, sidecar: Sidecar | undefined): ObjectInfo {
  const entry = boundEntry(sidecar, stats);
  if (entry) {
    return {
      key,
      size: entry.size,
      etag: entry.sha256 ? etagFromSha256(entry.sha256) : foreignEtag(stats),
      sha256: entry.sha256,
      contentType: entry.contentType,
      lastModified: new Date(Math.floor(entry.mtimeMs)),
      metadata: { ...entry.metadata },
      cacheControl: entry.cacheControl,
      contentDisposition: entry.contentDisposition,
    };
  }
  return {
    key,
    size: stats.size,
    etag: foreignEtag(stats),
    contentType: guessContentType(key),
    lastModified: new Date(Math.floor(stats.mtimeMs)),
    metadata: {},
  };
}

function foreignEtag(stats: DataStats): string {
  return `${stats.size.toString(16)}-${Math.round(stats.mtimeMs * 1000).toString(16)}`;
}
