/**
 * The public types of Stowage and the {@link Driver} contract every backend implements.
 */
import type { Readable } from 'node:stream';
import type { ReadableStream as WebReadableStream } from 'node:stream/web';
import type { PutBody, PutBodyChecks } from './body.js';
import type { OnProgress } from './progress.js';

/** What Stowage knows about a stored object. */
export interface ObjectInfo {
  /** The normalized (NFC) key. */
  key: string;
  /** Size in bytes. */
  size: number;
  /** An opaque version tag without quotes; it changes whenever the content changes. */
  etag: string;
  /** Lowercase hex SHA-256 of the content, or `undefined` for objects written by other tools. */
  sha256?: string;
  /** The MIME type stored with the object. */
  contentType: string;
  /** When the object was last written. */
  lastModified: Date;
  /** User metadata: lowercase names, string values. */
  metadata: Record<string, string>;
  /** The Cache-Control value stored with the object, if any. */
  cacheControl?: string;
  /** The Content-Disposition value stored with the object, if any. */
  contentDisposition?: string;
}

/** Anything `put` accepts as a body. Streams of unknown length are fine. */
export type Body = Uint8Array | string | Readable | WebReadableStream<Uint8Array> | AsyncIterable<Uint8Array>;

/** Options for `put` and `putFile`. */
export interface PutOptions {
  /** MIME type; defaults to a guess from the key's extension, else `application/octet-stream`. */
  contentType?: string;
  /** User metadata. Names: lowercase letters, digits, `-` and `_`; 2 KiB in all. */
  metadata?: Record<string, string>;
  /** Stored and served as the Cache-Control header. */
  cacheControl?: string;
  /** Stored and served as the Content-Disposition header. */
  contentDisposition?: string;
  /** `'*'`: create only; fails with E_ALREADY_EXISTS if the key exists. */
  ifNoneMatch?: '*';
  /** Replace only if the current ETag equals this; else E_PRECONDITION_FAILED (also when missing). */
  ifMatch?: string;
  /** Expected lowercase hex SHA-256; on mismatch E_CHECKSUM_MISMATCH and nothing is stored. */
  sha256?: string;
  /** Refuse bodies larger than this many bytes with E_TOO_LARGE, checked while streaming. */
  maxSize?: number;
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

/** What `getStream` returns. */
export interface ObjectStream {
  /** The content (or the requested range of it). */
  stream: Readable;
  /** The object's metadata, describing the whole object. */
  info: ObjectInfo;
  /** The resolved range when one was requested. */
  range?: ResolvedRange;
  /**
   * The same bytes `stream` yields, when the driver read them into memory anyway (small
   * objects). Taking `bytes` instead of reading `stream` saves building a stream, which
   * costs more than the read itself for small responses. Callers may keep or change
   * these bytes: they are the caller's own copy.
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

/** What a driver supports. Callers check these before they call; unsupported calls throw E_UNSUPPORTED. */
export interface Capabilities {
  /** Signed URLs (`signedUrl`) can be issued. */
  signedUrls: boolean;
  /** `ifMatch` / `ifNoneMatch` are atomic with respect to other writers. */
  conditionalWrites: boolean;
  /** Range reads. */
  rangeReads: boolean;
  /** A key may also be the prefix of other keys (`a` and `a/b` both exist). False on filesystems. */
  keyIsPrefix: boolean;
  /** The largest UTF-8 byte length of one key segment, if the backend limits it. */
  maxSegmentBytes?: number;
  /** The largest object the driver accepts, if it limits it. */
  maxObjectSize?: number;
}

/** Options a driver receives for `list`, after Storage validated them. */
export interface DriverListOptions {
  prefix: string;
  delimiter?: string;
  cursor?: string;
  limit: number;
  details?: boolean;
  startAfter?: string;
  /** The caller's cancel; a driver may use it to stop its requests (Storage checks it either way). */
  signal?: AbortSignal;
}

/** Options a driver receives for a write, after Storage validated them. */
export interface DriverPutOptions {
  contentType: string;
  metadata: Record<string, string>;
  cacheControl?: string;
  contentDisposition?: string;
  ifNoneMatch?: '*';
  ifMatch?: string;
  signal?: AbortSignal;
}

/**
 * The contract between {@link Storage} and a backend. Storage normalizes keys and
 * validates options before calling a driver, so drivers receive only valid keys.
 * Every method rejects with a StorageError (never a raw backend error).
 */
export interface Driver {
  /** Short backend name used in errors and health reports, e.g. `fs`. */
  readonly name: string;
  /** What this driver supports. */
  readonly capabilities: Capabilities;

  /**
   * Stores `body` at `key`, replacing any existing object atomically: readers see
   * the old object or the new one, never a mix or a partial body. The driver must
   * consume the body fully and call `body.complete()` before it commits; when
   * `complete()` throws (checksum or size) or the body errors, nothing is stored
   * and the previous version is intact. Honours `ifNoneMatch` (E_ALREADY_EXISTS)
   * and `ifMatch` (E_PRECONDITION_FAILED, also when the key is missing).
   */
  put(key: string, body: PutBody, opts: DriverPutOptions): Promise<ObjectInfo>;

  /**
   * Optional: stores a local file. Drivers that can do better than streaming (a kernel
   * copy, a known size, a body that can be re-sent on retry) implement it; without it
   * Storage streams the file through `put`. Same guarantees as `put`: `checks.sha256`
   * mismatch is E_CHECKSUM_MISMATCH and `checks.maxSize` is E_TOO_LARGE, with nothing stored.
   */
  putFile?(key: string, path: string, opts: DriverPutOptions, checks: PutBodyChecks): Promise<ObjectInfo>;

  /** Returns the object's info. A missing key rejects with E_NOT_FOUND. */
  stat(key: string): Promise<ObjectInfo>;

  /**
   * Opens the object for reading, optionally a byte range (resolved with
   * `resolveRange`). A missing key rejects with E_NOT_FOUND; a range past the end
   * with E_RANGE_NOT_SATISFIABLE. The stream reads the version `info` describes,
   * even if the key is overwritten meanwhile.
   */
  read(key: string, opts: GetOptions): Promise<ObjectStream>;

  /** Removes the object. A missing key resolves. */
  delete(key: string): Promise<void>;

  /**
   * Removes these keys and returns how many were given (missing keys count: deleting
   * them succeeds). An empty list deletes nothing and returns 0.
   */
  deleteMany(keys: readonly string[]): Promise<number>;

  /**
   * Copies `from` to `to` with content type, metadata and checksum. A missing
   * source rejects with E_NOT_FOUND; copying a key onto itself is a no-op that returns its info.
   */
  copy(from: string, to: string): Promise<ObjectInfo>;

  /**
   * Optional: copies `from` of another driver `source` to `to` inside the backend, so
   * the bytes never pass through this process (S3 CopyObject across buckets of one
   * service). Resolves undefined when it cannot for this source; the caller then streams.
   */
  copyFrom?(source: Driver, from: string, to: string): Promise<ObjectInfo | undefined>;

  /**
   * Optional native move (e.g. a rename). Without it Storage copies then deletes.
   * Same contract as copy, after which `from` no longer exists.
   */
  move?(from: string, to: string): Promise<ObjectInfo>;

  /**
   * One page of objects whose keys start with `prefix`, in UTF-8 byte order. An
   * empty store or a prefix nothing starts with lists nothing. With a delimiter,
   * keys containing it after the prefix are folded into `prefixes`. Pages never
   * repeat or skip keys that exist throughout the listing, even with writes between pages.
   * With `details: false` only key, size, etag and lastModified must be right (enough to
   * count or delete), which spares backends like S3 a request per object. Without a
   * cursor, `startAfter` starts the listing strictly after that key (S3's StartAfter),
   * so a caller can resume from a key it knows; a cursor takes precedence over it.
   */
  list(opts: DriverListOptions): Promise<ListPage>;

  /**
   * Optional driver-native signed URL (S3 presigning). Without it Storage issues
   * HMAC-signed URLs on its own `baseUrl`.
   */
  signedUrl?(key: string, opts: SignedUrlOptions & { expiresIn: number }): Promise<SignedUrl>;

  /** Optional: a presigned POST form for browser uploads (S3). */
  presignPost?(key: string, opts: PresignPostOptions): Promise<PresignedPost>;

  /** Checks the backend can be used; rejects with the reason when it cannot. Returns facts for `health`. */
  check(): Promise<Record<string, unknown>>;

  /** Optional start-up check that may also create the bucket; without it `check` is used. */
  verify?(opts: VerifyOptions): Promise<Record<string, unknown>>;

  /**
   * Optional: multipart uploads under `prefix` that were started and never completed
   * or aborted (S3 bills their parts and lists them nowhere else). Backends without
   * this method keep no such uploads: their partial writes are temp files.
   */
  incompleteUploads?(prefix: string): Promise<IncompleteUpload[]>;

  /** Optional, with `incompleteUploads`: aborts one, freeing its parts. One already gone resolves. */
  abortUpload?(upload: IncompleteUpload): Promise<void>;

  /** Releases resources (sockets, timers). Calls after close are not supported. */
  close?(): Promise<void>;
}

/** A multipart upload that was started and never completed or aborted. */
export interface IncompleteUpload {
  key: string;
  uploadId: string;
  initiated: Date;
}
