/**
 * Helpers about objects that every driver shares: range resolution, ETags, content-type
 * guessing, write preconditions, and the errors and results drivers build.
 */
import type * as MimeFull from 'mime';
import mimeStandard from 'mime/lite';
import { Readable } from 'node:stream';
import { isStorageError, StorageError, type StorageErrorInit } from './errors.js';
import { lazyModule } from './lazy.js';
import type { ByteRange, NotModified, ObjectAttributes, ObjectInfo, ObjectStream, QueuedWrite, ResolvedRange, WriteResult } from './types.js';

/** The content type used when none is given and the key's extension is unknown. */
export const DEFAULT_CONTENT_TYPE = 'application/octet-stream';

/**
 * Resolves a range against an object's size, HTTP-style: `end` past the last byte is
 * clamped; `{ suffix: n }` is the last n bytes (all of them when n >= size). A start at
 * or past the end, a zero suffix, or any range on an empty object is
 * E_RANGE_NOT_SATISFIABLE; a malformed range is E_INVALID_ARGUMENT, and so is a number
 * that is not a safe integer (beyond 2^53 - 1 a number no longer names one byte; the
 * HTTP service clamps such positions from a Range header before they get here).
 */
export function resolveRange(range: ByteRange, size: number): ResolvedRange {
  const notSatisfiable = (what: string) => rangeNotSatisfiable(what, size);
  if ('suffix' in range) {
    if (!isByteCount(range.suffix)) throw badRange(range);
    if (range.suffix === 0 || size === 0) throw notSatisfiable(`suffix ${range.suffix}`);
    return { start: Math.max(0, size - range.suffix), end: size - 1 };
  }
  const { start, end } = range;
  if (!isByteCount(start) || (end !== undefined && (!isByteCount(end) || end < start))) throw badRange(range);
  if (start >= size) throw notSatisfiable(`${start}-${end ?? ''}`);
  return { start, end: Math.min(end ?? size - 1, size - 1) };
}

/**
 * E_RANGE_NOT_SATISFIABLE for the range `what` of an object of `size` bytes, carrying the
 * size in `details.size`, which an HTTP 416 names in its Content-Range.
 */
export function rangeNotSatisfiable(what: string, size: number, init: StorageErrorInit = {}): StorageError {
  return new StorageError('E_RANGE_NOT_SATISFIABLE', `range ${what} is outside the object of ${size} bytes`, { ...init, details: { ...init.details, size } });
}

function isByteCount(n: unknown): n is number {
  return typeof n === 'number' && Number.isSafeInteger(n) && n >= 0;
}

function badRange(range: unknown): StorageError {
  return new StorageError(
    'E_INVALID_ARGUMENT',
    `invalid range ${JSON.stringify(range)}: use { start, end? } with 0 <= start <= end, or { suffix: n }, in whole numbers up to Number.MAX_SAFE_INTEGER`,
  );
}

/** True when a write was queued by an outbox rather than stored (see {@link QueuedWrite}). */
export function isQueued(result: WriteResult): result is QueuedWrite {
  return (result as Partial<QueuedWrite>).status === 'queued';
}

/**
 * The info of a write that an operation needs stored now (a copy through a write): a
 * queued one, from an outbox below, is E_UNAVAILABLE, since nothing was stored yet.
 */
export function storedInfo(result: WriteResult): ObjectInfo {
  if (!isQueued(result)) return result;
  throw new StorageError('E_UNAVAILABLE', `${JSON.stringify(result.key)} was queued by an outbox, not stored (${result.reason})`, { key: result.key });
}

/** Strips the quotes (and a weak `W/` marker) from an ETag so either form compares equal. */
export function normalizeEtag(etag: string): string {
  return etag.replace(/^W\//, '').replace(/^"(.*)"$/, '$1');
}

// RFC 9110's etagc, ASCII only and without commas (which separate the tags of a list).
const BARE_ETAG = /^[\x21\x23-\x2b\x2d-\x7e]+$/;

/** True when `etag` (without quotes or `W/`) is one ETag a header can carry: printable ASCII, no spaces, quotes or commas. */
export function isBareEtag(etag: string): boolean {
  return BARE_ETAG.test(etag);
}

/**
 * The answer to a read with `ifNoneMatch` (a bare ETag) when the object described by
 * `info` has that ETag, with a copy of `info`; undefined when it has another ETag or no
 * condition was given.
 */
export function notModifiedIf(info: ObjectInfo, ifNoneMatch: string | undefined): NotModified | undefined {
  return ifNoneMatch !== undefined && info.etag === ifNoneMatch ? { notModified: true, etag: info.etag, info: cloneInfo(info) } : undefined;
}

/** The content of a read made without `ifNoneMatch`, which never answers NotModified (the contract says so). */
export function contentOf(result: ObjectStream | NotModified): ObjectStream {
  if (result.notModified) throw new StorageError('E_UNAVAILABLE', 'the driver answered a read without ifNoneMatch as not modified');
  return result;
}

/** The ETag of content with this SHA-256: stable for equal content, as S3's is for single-part uploads. */
export function etagFromSha256(sha256: string): string {
  return sha256.slice(0, 32);
}

/**
 * mime's full table (standard types plus vendor ones such as .docx and .mkv), required
 * only when the standard table, which is cheap to load, does not know a name. The two
 * agree wherever the standard table has an answer, so this gives the full table's answers.
 */
const mimeFull = lazyModule<typeof MimeFull>('mime', 'content types of vendor formats');

/** The content type registered for a name's extension, or undefined when unknown. */
export function contentTypeFromName(name: string): string | undefined {
  return mimeStandard.getType(name) ?? mimeFull().default.getType(name) ?? undefined;
}

/** The usual extension of a content type (`image/jpeg` gives `jpg`), or undefined when none is registered. */
export function extensionFromContentType(contentType: string): string | undefined {
  return mimeStandard.getExtension(contentType) ?? mimeFull().default.getExtension(contentType) ?? undefined;
}

/** Guesses a content type from the key's extension, falling back to application/octet-stream. */
export function guessContentType(key: string): string {
  return contentTypeFromName(key) ?? DEFAULT_CONTENT_TYPE;
}

/**
 * Applies `ifNoneMatch` / `ifMatch` to the object currently stored (undefined when
 * missing). Drivers call it at commit time, under whatever makes the commit atomic.
 */
export function checkWritePreconditions(
  key: string,
  current: { etag: string } | undefined,
  opts: { ifNoneMatch?: '*'; ifMatch?: string },
): void {
  if (opts.ifNoneMatch === '*' && current) {
    throw new StorageError('E_ALREADY_EXISTS', `${JSON.stringify(key)} already exists (ifNoneMatch: "*")`, { key });
  }
  if (opts.ifMatch !== undefined && current?.etag !== opts.ifMatch) {
    const found = current ? `its ETag is ${current.etag}` : 'it does not exist';
    throw new StorageError('E_PRECONDITION_FAILED', `${JSON.stringify(key)} does not match ifMatch ${opts.ifMatch}: ${found}`, { key });
  }
}

/** The error for a missing object; `cause` keeps the backend's own error for logs. */
export function notFound(key: string, cause?: unknown): StorageError {
  return new StorageError('E_NOT_FOUND', `no object at ${JSON.stringify(key)}`, { key, cause });
}

/** The info of `key`, or undefined when there is no such object; other failures reject. */
export async function statOrUndefined(store: { stat(key: string): Promise<ObjectInfo> }, key: string): Promise<ObjectInfo | undefined> {
  try {
    return await store.stat(key);
  } catch (err) {
    if (isStorageError(err, 'E_NOT_FOUND')) return undefined;
    throw err;
  }
}

/** The error for a body over its size limit. */
export function tooLarge(maxSize: number): StorageError {
  return new StorageError('E_TOO_LARGE', `the body is larger than the limit of ${maxSize} bytes`, { details: { maxSize } });
}

/**
 * A Content-Disposition that makes browsers download under `filename`: an ASCII-only
 * fallback (quotes, backslashes and non-ASCII replaced) plus the exact UTF-8 name, so a
 * client-supplied name can never break out of the header.
 */
export function attachmentDisposition(filename: string): string {
  const ascii = filename.replace(/[^\x20-\x7e]|["\\]/g, '_');
  return `attachment; filename="${ascii}"; filename*=UTF-8''${encodeURIComponent(filename)}`;
}

/** The attributes alone (type, user metadata, stored headers) of an object's info or a write's options: what a copy carries over. */
export function copyAttributes(from: ObjectAttributes): ObjectAttributes {
  return { contentType: from.contentType, metadata: from.metadata, cacheControl: from.cacheControl, contentDisposition: from.contentDisposition };
}

/**
 * The result of a read whose bytes are already in memory: `bytes` is set, and `stream`
 * is built only when someone asks for it (a getter), since most callers of small
 * reads (the HTTP service, `Storage.get`) take the bytes and never need one.
 */
export function bufferedObject(bytes: Buffer, info: ObjectInfo, range: ResolvedRange | undefined): ObjectStream {
  let stream: Readable | undefined;
  return {
    bytes,
    info,
    range,
    get stream() {
      return (stream ??= Readable.from([bytes], { objectMode: false }));
    },
  };
}

/** A deep copy of an object's info, for handing out info a driver keeps, which callers may change. */
export function cloneInfo(info: ObjectInfo): ObjectInfo {
  return { ...info, metadata: { ...info.metadata }, lastModified: new Date(info.lastModified) };
}
