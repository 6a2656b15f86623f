/**
 * The public data types of Stowage: objects, bodies, options and results. The contract
 * every backend implements is in contract.ts.
 */
import type { Readable } from 'node:stream';
import type { ReadableStream as WebReadableStream } from 'node:stream/web';
import type { OnProgress } from './progress.js';

/**
 * What is stored with an object besides its bytes and served with it: a write sets these,
 * a read returns them, a copy carries them over.
 */
export interface ObjectAttributes {
  /** The MIME type. */
  contentType: string;
  /** User metadata: lowercase names (letters, digits, `-` and `_`), string values; 2 KiB in all. */
  metadata: Record<string, string>;
  /** Stored and served as the Cache-Control header. */
  cacheControl?: string;
  /** Stored and served as the Content-Disposition header. */
  contentDisposition?: string;
}

/** What Stowage knows about a stored object. */
export interface ObjectInfo extends ObjectAttributes {
  /** The normalized (NFC) key. */
  key: string;
  /** Size in bytes. */
  size: number;
  /** An opaque version tag without quotes; it changes whenever the content changes. */
  etag: string;
  /** Lowercase hex SHA-256 of the content, or `undefined` for objects written by other tools. */
  sha256?: string;
  /** When the object was last written. */
  lastModified: Date;
}

/**
 * The answer to a write an outbox accepted while the backend was unavailable: the body is
 * spooled durably on local disk and will be delivered in the background. It is not an
 * {@link ObjectInfo}: nothing is stored in the backend yet (reads of the key through the
 * same storage serve the queued version meanwhile). Tell the two apart with `isQueued`.
 */
export interface QueuedWrite {
  status: 'queued';
  /** The normalized key. */
  key: string;
  /** The outbox entry's id (in `stowage outbox status` and the dead-letter folder). */
  id: string;
  /** Size in bytes of the spooled body. */
  size: number;
  /** Lowercase hex SHA-256 of the spooled body; delivery is verified against it. */
  sha256: string;
  /** When the write was queued. */
  queuedAt: Date;
  /** The code of the backend failure that sent the write to the outbox (E_UNAVAILABLE or E_TIMEOUT). */
  reason: string;
}

/** What a write resolves to: the stored object's info, or (with an outbox) a {@link QueuedWrite}. */
export type WriteResult = ObjectInfo | QueuedWrite;

/** What `putFile` adds to a write's result. */
export interface PutFileResult {
  /**
   * Bytes of the file that an earlier, interrupted `putFile` of the same file (same path,
   * size and modification time) to the same key had already stored, and that this call
   * therefore did not send again; 0 when it started afresh.
   */
  resumedBytes: number;
}

/** Anything `put` accepts as a body. Streams of unknown length are fine. */
export type Body = Uint8Array | string | Readable | WebReadableStream<Uint8Array> | AsyncIterable<Uint8Array>;

/**
 * Options for `put` and `putFile`: the object's attributes (`contentType` defaults to a
 * guess from the key's extension, else `application/octet-stream`; metadata names may be
 * given in any case and are stored lowercased), plus conditions and checks.
 */
export interface PutOptions extends Partial<ObjectAttributes> {
  /** `'*'`: create only; fails with E_ALREADY_EXISTS if the key exists. */
  ifNoneMatch?: '*';
  /** Replace only if the current ETag equals this; else E_PRECONDITION_FAILED (also when missing). */
  ifMatch?: string;
  /** Expected lowercase hex SHA-256; on mismatch E_CHECKSUM_MISMATCH and nothing is stored. */
  sha256?: string;
  /** Refuse bodies larger than this many bytes with E_TOO_LARGE, checked while streaming. */
  maxSize?: number;
  /**
   * The body's exact size in bytes, when the caller knows it (an HTTP Content-Length): a
   * quota refuses a write that cannot fit before a byte is stored, and a body of another
   * length fails with E_INVALID_ARGUMENT with nothing stored. (`putFile` knows its file's.)
   */
  size?: number;
  /** Cancels the write: it rejects with E_ABORTED and nothing is stored. */
  signal?: AbortSignal;
  /** Told `{ bytes, total? }` as the body is read, and a last time once the object is stored. */
  onProgress?: OnProgress;
}

/** A byte range: `{ start, end? }` (end inclusive) or the last `suffix` bytes. */
export type ByteRange = { start: number; end?: number } | { suffix: number };

/** A range resolved against an object's size; both ends inclusive. */
export interface ResolvedRange {
  start: number;
  end: number;
}

/** Options for `getStream`. */
export interface GetOptions {
  /** Read only part of the object. */
  range?: ByteRange;
  /**
   * Cancels the read: the call rejects, or the stream is destroyed, with E_ABORTED.
   * (Storage guarantees this for every driver; a driver may also use it to stop its own
   * requests sooner.)
   */
  signal?: AbortSignal;
  /** Told `{ bytes, total }` as the content is read, and a last time at its end. */
  onProgress?: OnProgress;
}

/**
 * Options of a conditional read (HTTP's If-None-Match): with `ifNoneMatch`, `get` and
 * `getStream` resolve to {@link NotModified} instead of the content when the object
 * still has that ETag, so a caller holding a copy learns it is current without reading
 * it again. The key is required (it may hold `undefined`, which reads unconditionally),
 * so the result is typed `... | NotModified` exactly when a condition may apply.
 */
export interface ConditionalGetOptions extends GetOptions {
  /** One ETag, with or without quotes and a `W/` prefix (compared weakly, as HTTP does); not `*`. */
  ifNoneMatch: string | undefined;
}

/**
 * What a read with `ifNoneMatch` resolves to when the object's ETag is that one: no
 * content, like HTTP's 304. A missing object is still E_NOT_FOUND; the condition is
 * checked before any range, so a matching ETag wins over an unsatisfiable range.
 */
export interface NotModified {
  /** Tells it apart from content (whose `notModified` is never true). */
  readonly notModified: true;
  /** The object's ETag (without quotes): the one asked about. */
  etag: string;
  /**
   * The object's info, when the backend gives it with the answer at no extra cost (fs
   * and memory do); S3 answers a matching GET with a bare 304, so there it is undefined.
   */
  info?: ObjectInfo;
}

/** What `getStream` returns. */
export interface ObjectStream {
  /** Never true on content: tells it apart from {@link NotModified} in the result of a conditional read. */
  readonly notModified?: false;
  /** The content (or the requested range of it). */
  stream: Readable;
  /** The object's metadata, describing the whole object. */
  info: ObjectInfo;
  /** The resolved range when one was requested. */
  range?: ResolvedRange;
  /**
   * The same bytes `stream` yields, when the driver read them into memory anyway (small
   * objects, or larger ones a caller said it takes whole: a driver's `bufferUpTo`).
   * Taking `bytes` instead of reading `stream` saves building a stream, which
   * costs more than the read itself for small responses. Callers may keep or change
   * these bytes: they are the caller's own copy, in a buffer the caller lent when its read
   * passed `bufferFor` (so a layer that keeps bytes it passes on, a cache say, copies
   * them, or drops `bufferFor` from the read it forwards).
   */
  bytes?: Buffer;
  /**
   * Hands a chunk of `stream` back once the caller is completely done with it (for
   * example, a socket has taken its bytes), so the driver reads later chunks into the
   * same memory instead of allocating more. Optional on both sides: drivers that do not
   * recycle leave it out, and a caller that never releases simply gets fresh chunks.
   * Releasing a chunk that did not come from this stream, or one twice, is ignored.
   */
  release?: (chunk: Buffer) => void;
}

/** Options for `list`. */
export interface ListOptions {
  /** Only keys starting with this string. */
  prefix?: string;
  /** Group keys by the next occurrence of this string after the prefix (usually `/`). */
  delimiter?: string;
  /** The `cursor` from the previous page. */
  cursor?: string;
  /** Without a cursor: start strictly after this key (to resume from a key you know). */
  startAfter?: string;
  /** Items per page (objects plus prefixes), 1 to 1000; default 1000. */
  limit?: number;
  /** Cancels the listing: it rejects with E_ABORTED. */
  signal?: AbortSignal;
}

/** One page of a listing. */
export interface ListPage {
  /** Objects in UTF-8 byte order of their keys. */
  objects: ObjectInfo[];
  /** Common prefixes (each ending in the delimiter), in byte order. */
  prefixes: string[];
  /** Present when more items follow; pass it back as `cursor`. */
  cursor?: string;
}

/** Options for `signedUrl`. */
export interface SignedUrlOptions {
  /** `GET` to download, `PUT` to upload. */
  method: 'GET' | 'PUT';
  /** Seconds until the URL expires (1 to 604800); default 3600. */
  expiresIn?: number;
  /** For PUT: the Content-Type the client must send. */
  contentType?: string;
  /** For PUT: the largest body accepted, in bytes (not on S3, which cannot enforce it on a PUT: use contentLength or a POST form). */
  maxSize?: number;
  /** For PUT: the exact body size in bytes. */
  contentLength?: number;
  /** For GET: serve as an attachment with this file name. */
  download?: string;
  /** For GET: serve with this Content-Type instead of the stored one. */
  responseContentType?: string;
  /**
   * For GET: serve this image variant (see `images`) instead of the object. Such a link is
   * always served by the Stowage service (it renders variants), so it needs `baseUrl` and
   * `signingSecret` on every backend, S3 too.
   */
  variant?: string;
}

/** A URL a client can use without credentials until it expires. */
export interface SignedUrl {
  url: string;
  method: 'GET' | 'PUT';
  /** Headers the client must send with the request. */
  headers: Record<string, string>;
  expiresAt: Date;
}

/** Options of a presigned POST form (browser uploads straight to the backend). */
export interface PresignPostOptions {
  /** Seconds until the form expires (1 to 604800); default 3600. */
  expiresIn?: number;
  /** The Content-Type the upload must declare. */
  contentType?: string;
  /** The largest upload accepted, in bytes. */
  maxSize?: number;
}

/** A browser form upload: POST `fields` plus a `file` field to `url`. */
export interface PresignedPost {
  url: string;
  fields: Record<string, string>;
  expiresAt: Date;
}

/** Options of `verify`. */
export interface VerifyOptions {
  /** Create the bucket (or root) when it does not exist. */
  createBucket?: boolean;
}

/** Totals for `usage`. */
export interface Usage {
  objects: number;
  bytes: number;
}

/** What `health` reports. */
export interface HealthReport {
  ok: boolean;
  /** The driver name, e.g. `fs`. */
  backend: string;
  /** How long the check took. */
  latencyMs: number;
  /** Human-readable facts: the root folder, the bucket, or what failed. */
  detail: Record<string, unknown>;
}

/** A multipart upload that was started and never completed or aborted. */
export interface IncompleteUpload {
  key: string;
  uploadId: string;
  initiated: Date;
}
