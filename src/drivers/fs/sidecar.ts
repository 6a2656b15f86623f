/**
 * Sidecars: the JSON file beside each object (under `.stowage/meta/`) holding what a
 * filesystem cannot: content type, user metadata, SHA-256 and headers.
 *
 * A sidecar is bound to its data file by size and modification time. Every write
 * gives its data file a fresh, randomized mtime before the rename, so a sidecar that
 * does not belong to the bytes on disk (a reader racing a commit, a crash between the
 * two renames, a file edited by hand) is detected and never reported as the truth.
 */
import { open, readFile, type FileHandle } from 'node:fs/promises';
import { etagFromSha256, guessContentType } from '../../core/objects.js';
import type { ObjectInfo } from '../../core/types.js';
import type { ReadIo } from './read-io.js';

/** What a sidecar file holds. */
export interface Sidecar {
  v: 1;
  size: number;
  mtimeMs: number;
  sha256?: string;
  contentType: string;
  metadata: Record<string, string>;
  cacheControl?: string;
  contentDisposition?: string;
}

/** The size and mtime of a data file, as fstat reports them. */
export interface DataStats {
  size: number;
  mtimeMs: number;
}

/** Sidecars are small (metadata is capped at 2 KiB); one read of this size gets all of one. */
const SIDECAR_READ_BYTES = 16 * 1024;

/**
 * Reads a sidecar with a single read (open, read, close: fewer round trips than
 * readFile, which matters for stat-heavy listings). Undefined when missing or
 * unreadable: the object is then described from its file alone.
 */
export async function readSidecar(path: string, io: ReadIo): Promise<Sidecar | undefined> {
  try {
    const fd = await io.open(path);
    let text: string;
    try {
      const head = await io.read(fd, SIDECAR_READ_BYTES, 0);
      text = head.length < SIDECAR_READ_BYTES ? head.toString('utf8') : await readFile(path, 'utf8');
    } finally {
      await io.close(fd);
    }
    const parsed = JSON.parse(text) as Partial<Sidecar>;
    return parsed.v === 1 && typeof parsed.size === 'number' && typeof parsed.mtimeMs === 'number' ? (parsed as Sidecar) : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Seals a staged object: gives the data file its unique mtime, writes the sidecar that
 * binds to it, and (when `durable`) fsyncs both in parallel, so the journal can commit
 * them together. Returns the sidecar.
 */
export async function sealStaged(
  dataTemp: string,
  metaTemp: string,
  fields: Omit<Sidecar, 'v' | 'size' | 'mtimeMs'>,
  durable: boolean,
): Promise<Sidecar> {
  const handles: FileHandle[] = [];
  try {
    const data = await open(dataTemp, 'r+');
    handles.push(data);
    const mtime = uniqueMtime();
    await data.utimes(mtime, mtime);
    const st = await data.stat();
    const sidecar: Sidecar = { v: 1, size: st.size, mtimeMs: st.mtimeMs, ...fields };
    const meta = await open(metaTemp, 'wx');
    handles.push(meta);
    await meta.writeFile(JSON.stringify(sidecar));
    if (durable) await Promise.all([data.sync(), meta.sync()]);
    return sidecar;
  } finally {
    await Promise.all(handles.map((h) => h.close()));
  }
}

/** True when the sidecar describes exactly these bytes on disk. */
export function isBound(sidecar: Sidecar | undefined, stats: DataStats): sidecar is Sidecar {
  return sidecar !== undefined && sidecar.size === stats.size && sidecar.mtimeMs === stats.mtimeMs;
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
  if (isBound(sidecar, stats)) {
    return {
      key,
      size: sidecar.size,
      etag: sidecar.sha256 ? etagFromSha256(sidecar.sha256) : foreignEtag(stats),
      sha256: sidecar.sha256,
      contentType: sidecar.contentType,
      lastModified: new Date(Math.floor(sidecar.mtimeMs)),
      metadata: { ...sidecar.metadata },
      cacheControl: sidecar.cacheControl,
      contentDisposition: sidecar.contentDisposition,
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
