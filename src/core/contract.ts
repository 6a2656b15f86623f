/**
 * The Driver contract: every operation a backend (or a layer around one) implements,
 * the capabilities that say what it supports, and the options it receives once Storage
 * has validated them.
 */
import type { Readable } from 'node:stream';
import type { PutBody, PutBodyChecks } from './body.js';
import { StorageError } from './errors.js';
import type { InternalFilesPage, InternalPutOptions } from './internal-files.js';
import type { DriverSessionCompleteOptions, DriverSessionWriteOptions, SessionBody, SessionRecord } from './sessions.js';
import type { GetOptions, IncompleteUpload, ListPage, NotModified, ObjectAttributes, ObjectInfo, ObjectStream, PresignedPost, PresignPostOptions, SignedUrl, SignedUrlOptions, VerifyOptions, WriteResult, PutFileResult } from './types.js';

/**
 * What a driver supports, stated in one place: Storage and the HTTP service decide by
 * these, never by looking for a method (every driver has every method of the contract;
 * one for an operation the driver lacks throws E_UNSUPPORTED, or returns the documented
 * "nothing", see {@link Driver}). Layers forward the capabilities of what they wrap,
 * unless they change what it supports.
 */
export interface DriverCapabilities {
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
  /**
   * `signedUrl` issues URLs the backend itself accepts (S3 presigning). Without it Storage
   * issues HMAC-signed links on its `baseUrl`, which the HTTP service serves.
   */
  nativeSignedUrls: boolean;
  /** `presignPost` issues forms the backend itself accepts (an S3 POST policy); without it Storage issues HMAC-signed forms. */
  nativePresignPost: boolean;
  /** `move` moves in one step (a rename); without it Storage copies, then deletes. */
  nativeMove: boolean;
  /** `putFile` stores a local file better than a stream could (a kernel copy); without it Storage streams the file through `put`. */
  nativePutFile: boolean;
  /**
   * The backend keeps multipart uploads that were started and never finished (S3), which
   * `incompleteUploads` lists and `abortUpload` aborts. Without it there are none: a
   * partial write is a temp file the driver removes.
   */
  multipartUploads: boolean;
  /**
   * Upload sessions (`createSession` and the rest) whose state lives in the backend, so
   * a session outlives the process that started it. Without it those operations throw
   * E_UNSUPPORTED.
   */
  sessions: boolean;
  /**
   * Internal files (`putInternal` and the rest): Stowage's own small blobs kept in the
   * backend's reserved area, outside every listing. Without it those operations throw
   * E_UNSUPPORTED (listing gives nothing), and features that need them (stored image
   * variants, upload receipts) are unavailable.
   */
  internalFiles: boolean;
}

/**
 * What a storage supports: its driver's capabilities, plus what Storage adds on top of
 * any driver.
 */
export interface Capabilities extends DriverCapabilities {
  /**
   * This storage can issue signed URLs (`signedUrl`): presigned by the backend
   * (`nativeSignedUrls`), or HMAC-signed links on `baseUrl` when the storage was given
   * `baseUrl` and `signingSecret`.
   */
  signedUrls: boolean;
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
export interface DriverPutOptions extends ObjectAttributes {
  ifNoneMatch?: '*';
  ifMatch?: string;
  signal?: AbortSignal;
  /**
   * The upload sessions whose bytes this write stores (`sessions.concat` sets it; the public
   * `put` never does): a layer that holds room for those sessions (quotas) counts the write
   * against what they hold instead of taking the room a second time. Drivers ignore it.
   */
  sessions?: readonly string[];
}

/**
 * Read options a driver receives. `ifNoneMatch` is one bare ETag (no quotes, no `W/`),
 * as Storage normalized it; `range` is checked by the driver with `resolveRange`.
 */
export interface DriverReadOptions extends GetOptions, ReadHints {
  ifNoneMatch?: string;
}

/** What a caller tells a driver's `read` about how it will use the content; a driver may ignore it. */
export interface ReadHints {
  /**
   * The caller reads the whole content into memory when it is at most this many bytes
   * (`Storage.get` without `onProgress`: any size; an image variant's original: up to
   * the input limit). A driver may then read such content into one buffer and give it as
   * `bytes` where it would otherwise only stream it, which saves the stream, its chunks
   * and their copy into one buffer. Larger content streams as usual, so the caller can
   * refuse it unread. Layers forward it with the other options.
   */
  bufferUpTo?: number;
  /**
   * Where a driver reading the content whole may put it: a buffer of at least `size`
   * bytes, lent by the caller, of which `bytes` is then a view. A caller reading one
   * object after another (image variants) reuses its memory this way instead of having a
   * new buffer made, and collected, for each. A driver may ignore it.
   */
  bufferFor?: (size: number) => Buffer;
}

/**
 * Read options without `ifNoneMatch`: a driver's `read` with these always gives content.
 * The built-in drivers overload `read` on them, so a subclass (or any caller) that never
 * asks a condition keeps the plain `ObjectStream` type.
 */
export type UnconditionalReadOptions = GetOptions & ReadHints & { ifNoneMatch?: undefined };

/** Signed-URL options a driver receives, after Storage validated them and applied the default expiry. */
export type DriverSignedUrlOptions = SignedUrlOptions & { expiresIn: number };

/** POST-form options a driver receives, after Storage validated them and applied the default expiry. */
export type DriverPresignPostOptions = PresignPostOptions & { expiresIn: number };

/**
 * Where a driver's objects live, for copies inside one service. A driver that can copy
 * from another location of its service (S3 CopyObject across buckets) compares
 * `service` with its own; layers forward it, so this works through any stack of them. A
 * layer that changes keys or bytes must not forward it as it is: it returns undefined
 * (or the location its keys really live at), so a service never copies other bytes
 * than a read through the layer would give.
 */
export interface ObjectLocation {
  /**
   * Names the service and the access to it (for S3: the endpoint, region and keys, as a
   * digest: it holds no secret). Equal values mean one driver may copy from the other's
   * objects inside the service.
   */
  readonly service: string;
  /** The container within the service (an S3 bucket). */
  readonly bucket: string;
  /** The prefix every key of the driver lives under inside the container (may be empty). */
  readonly prefix: string;
}

/**
 * The contract between {@link Storage} and a backend, and between a layer and what it
 * wraps. Every operation is a required method: what a driver supports is said by
 * `capabilities`, and a method for an operation it lacks throws E_UNSUPPORTED (or returns
 * the "nothing" its documentation names). `BaseDriver` gives those defaults to a driver
 * of your own; `DriverLayer` forwards every operation, for a layer of your own.
 * {@link DRIVER_OPERATIONS} lists the operations.
 *
 * Storage normalizes keys and validates options before calling a driver, so drivers
 * receive only valid keys. Every method rejects with a StorageError (never a raw backend
 * error).
 */
export interface Driver {
  /** Short backend name used in errors and health reports, e.g. `fs`. */
  readonly name: string;
  /** What this driver supports. */
  readonly capabilities: DriverCapabilities;

  /**
   * Stores `body` at `key`, replacing any existing object atomically: readers see
   * the old object or the new one, never a mix or a partial body. The driver must
   * consume the body fully and call `body.complete()` before it commits; when
   * `complete()` throws (checksum or size) or the body errors, nothing is stored
   * and the previous version is intact. Honours `ifNoneMatch` (E_ALREADY_EXISTS)
   * and `ifMatch` (E_PRECONDITION_FAILED, also when the key is missing). A backend
   * resolves the stored object's info; an outbox layer may resolve a `QueuedWrite`
   * instead (the body spooled for later delivery), never an info for bytes not stored.
   */
  put(key: string, body: PutBody, opts: DriverPutOptions): Promise<WriteResult>;

  /**
   * Stores a local file, with `capabilities.nativePutFile` (a kernel copy, a known size, a
   * body that can be re-sent on retry); else E_UNSUPPORTED, and Storage streams the file
   * through `put`. Same guarantees as `put`: `checks.sha256` mismatch is
   * E_CHECKSUM_MISMATCH and `checks.maxSize` is E_TOO_LARGE, with nothing stored. A
   * driver that resumes an interrupted upload of the same file says how many bytes it
   * did not send again in `resumedBytes` (absent means 0).
   */
  putFile(key: string, path: string, opts: DriverPutOptions, checks: PutBodyChecks): Promise<WriteResult & Partial<PutFileResult>>;

  /** Returns the object's info. A missing key rejects with E_NOT_FOUND. */
  stat(key: string): Promise<ObjectInfo>;

  /**
   * Opens the object for reading, optionally a byte range (resolved with
   * `resolveRange`). A missing key rejects with E_NOT_FOUND; a range past the end
   * with E_RANGE_NOT_SATISFIABLE whose `details.size` is the object's size (so an HTTP
   * 416 can name the size in its Content-Range without another request). With
   * `ifNoneMatch` equal to the object's ETag it resolves to {@link NotModified}
   * instead, checked before the range, and opens nothing (only then: a read without
   * `ifNoneMatch` always gives content). The stream reads the version `info` describes,
   * even if the key is overwritten meanwhile. One request to the backend in each case,
   * where the backend allows (see the S3 driver for a service that leaves the size out).
   */
  read(key: string, opts: DriverReadOptions): Promise<ObjectStream | NotModified>;

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
   * Copies `from` of another driver `source` to `to` inside the backend, so the bytes
   * never pass through this process (S3 CopyObject across buckets of one service, found
   * by `source.location()`). Resolves undefined when it cannot for this source, which is
   * every source for most drivers; the caller then streams.
   */
  copyFrom(source: Driver, from: string, to: string): Promise<ObjectInfo | undefined>;

  /**
   * Moves in one step, with `capabilities.nativeMove`; else E_UNSUPPORTED, and Storage
   * copies then deletes. Same contract as copy, after which `from` no longer exists.
   */
  move(from: string, to: string): Promise<ObjectInfo>;

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

  /** A URL the backend itself accepts, with `capabilities.nativeSignedUrls`; else E_UNSUPPORTED. */
  signedUrl(key: string, opts: DriverSignedUrlOptions): Promise<SignedUrl>;

  /** A POST form the backend itself accepts, with `capabilities.nativePresignPost`; else E_UNSUPPORTED. */
  presignPost(key: string, opts: DriverPresignPostOptions): Promise<PresignedPost>;

  /** Checks the backend can be used; rejects with the reason when it cannot. Returns facts for `health`. */
  check(): Promise<Record<string, unknown>>;

  /** The start-up check, which may also create the bucket (or root); a driver with nothing more to do runs `check`. */
  verify(opts: VerifyOptions): Promise<Record<string, unknown>>;

  /**
   * Multipart uploads under `prefix` that were started and never completed or aborted
   * (S3 bills their parts and lists them nowhere else), with
   * `capabilities.multipartUploads`; without it, none (an empty list).
   */
  incompleteUploads(prefix: string): Promise<IncompleteUpload[]>;

  /**
   * Aborts an upload of `incompleteUploads`, freeing its parts; one already gone resolves.
   * Without `capabilities.multipartUploads`, E_UNSUPPORTED.
   */
  abortUpload(upload: IncompleteUpload): Promise<void>;

  /**
   * Starts an upload session from its record (offset 0, as Storage built it), stored so
   * that any process using the same backend finds it by id. E_UNSUPPORTED without
   * `capabilities.sessions`.
   */
  createSession(record: SessionRecord): Promise<SessionRecord>;

  /**
   * The session's record as last committed, with the offset recomputed from what the
   * backend really holds and checked against it (a record claiming bytes the backend lost
   * is E_UNAVAILABLE, never resumed). An unknown id, or a completed or aborted session, is
   * E_NOT_FOUND. Expired sessions are still returned: Storage decides about expiry.
   */
  getSession(id: string): Promise<SessionRecord>;

  /**
   * Appends the bytes of `body` at `opts.offset`, which must be the session's offset (else
   * E_OFFSET_MISMATCH, with the current offset in `details.offset`, and nothing written).
   * The driver stores bytes it reads and commits `body.checkpoint()` (offset plus hash
   * state) as it goes, fsyncing or uploading before each commit, so a crash at any instant
   * leaves the last committed state, which `getSession` gives a later process. When the
   * body fails (`body.failure`) the bytes before the failure stay committed and the write
   * rejects with the failure. `opts.size` declares the total size; it is stored with the
   * record. Resolves the record after the write. One writer per session at a time: a
   * second concurrent writer fails with E_OFFSET_MISMATCH or E_PRECONDITION_FAILED.
   */
  writeSession(id: string, body: SessionBody, opts: DriverSessionWriteOptions): Promise<SessionRecord>;

  /**
   * Stores the session's bytes as the object at its key, atomically (readers see the old
   * object or the whole new one), with the record's attributes and `opts.sha256`, then
   * removes the session. Honours `ifNoneMatch` / `ifMatch` like `put` (the session then
   * stays, to be aborted). Storage has checked size and digest before calling it.
   */
  completeSession(id: string, opts: DriverSessionCompleteOptions): Promise<ObjectInfo>;

  /** Removes the session and every byte it stored. A missing one resolves. */
  abortSession(id: string): Promise<void>;

  /**
   * The bytes [0, offset) of a finished partial session (`partial`, holding its `size`:
   * Storage checks both first), as a stream, for a concatenation. The session stays
   * until it is aborted. A driver that cannot read an unfinished upload (S3) first seals
   * the session's bytes into an object of its own under `.stowage/`, once: a second read
   * reads that object. Unknown: E_NOT_FOUND.
   */
  readSession(id: string, opts: { signal?: AbortSignal }): Promise<Readable>;

  /** Every session (expired ones too) whose key starts with `prefix`, in no set order. */
  listSessions(prefix: string): Promise<SessionRecord[]>;

  /**
   * Stores `data` as the internal file `name` (see internal-files.ts for names), replacing
   * any file there atomically: a reader sees the old bytes or the new ones, never a part.
   * Internal files are not objects: no listing, stat or quota sees them, and layers pass
   * them through unchanged. With `opts.cache`, durability may be traded for speed (see
   * InternalPutOptions). E_UNSUPPORTED without `capabilities.internalFiles`.
   */
  putInternal(name: string, data: Uint8Array, opts?: InternalPutOptions): Promise<void>;

  /** The internal file's bytes; a missing file resolves undefined. E_UNSUPPORTED without `capabilities.internalFiles`. */
  readInternal(name: string): Promise<Uint8Array | undefined>;

  /** Removes these internal files; missing ones resolve, and an empty list does nothing. E_UNSUPPORTED without `capabilities.internalFiles`. */
  deleteInternal(names: readonly string[]): Promise<void>;

  /**
   * One page (up to 1000) of the internal file names starting with `prefix` (empty, or a
   * name ending in `/`), in byte order, after `cursor` (the previous page's). Without
   * `capabilities.internalFiles`, an empty page.
   */
  listInternal(prefix: string, cursor?: string): Promise<InternalFilesPage>;

  /** Where the objects live, for server-side copies (see {@link ObjectLocation}); undefined when no other driver can copy from them. */
  location(): ObjectLocation | undefined;

  /** Releases resources (sockets, timers); a driver that holds none resolves. Calls after close are not supported. */
  close(): Promise<void>;
}

/** The name of an operation of the {@link Driver} contract. */
export type DriverOperation = { [K in keyof Driver]: Driver[K] extends (...args: never[]) => unknown ? K : never }[keyof Driver];

// A record, so that the compiler refuses this file when an operation is added to Driver
// and not here (or listed here and not in Driver).
const OPERATIONS: Record<DriverOperation, true> = {
  put: true,
  putFile: true,
  stat: true,
  read: true,
  delete: true,
  deleteMany: true,
  copy: true,
  copyFrom: true,
  move: true,
  list: true,
  signedUrl: true,
  presignPost: true,
  check: true,
  verify: true,
  incompleteUploads: true,
  abortUpload: true,
  createSession: true,
  getSession: true,
  writeSession: true,
  completeSession: true,
  abortSession: true,
  readSession: true,
  listSessions: true,
  putInternal: true,
  readInternal: true,
  deleteInternal: true,
  listInternal: true,
  location: true,
  close: true,
};

/** Every operation of the {@link Driver} contract, the one list tests and generic layers go by. */
export const DRIVER_OPERATIONS: readonly DriverOperation[] = Object.freeze(Object.keys(OPERATIONS) as DriverOperation[]);

/**
 * The driver, once it is known to have every operation of the contract: a driver written
 * in plain JavaScript (or for an older contract) without one fails here with
 * E_CONFIG_INVALID naming what is missing, rather than with a TypeError on first use.
 * (What it supports is still read from its capabilities only.) `role` names it in the
 * message, e.g. "the fallback storage's primary".
 */
export function checkDriver(driver: Driver, role = 'the driver'): Driver {
  if (driver === null || typeof driver !== 'object') throw new StorageError('E_CONFIG_INVALID', `${role} must be a Storage or a Driver`);
  const missing = DRIVER_OPERATIONS.filter((operation) => typeof (driver as unknown as Record<string, unknown>)[operation] !== 'function');
  if (missing.length > 0) {
    throw new StorageError('E_CONFIG_INVALID', `${role} ${JSON.stringify(driver.name)} lacks ${missing.join(', ')}: every operation of the Driver contract is a method (extend BaseDriver for the defaults)`);
  }
  return driver;
}
