/**
 * The S3 driver: any S3-compatible service through the official AWS SDK v3, with one
 * client per Storage (its own, or the caller's), Stowage's own SHA-256 stored as
 * metadata, its own multipart orchestration above a size threshold, and per-request
 * retries of temporary failures.
 */
import type { Readable } from 'node:stream';
import { realpath } from 'node:fs/promises';
import type { S3Client } from '@aws-sdk/client-s3';
import { PutBody, openRegularFile, type PutBodyChecks } from '../../core/body.js';
import type { Driver, DriverCapabilities, DriverListOptions, DriverPresignPostOptions, DriverPutOptions, DriverReadOptions, DriverSignedUrlOptions, UnconditionalReadOptions, ObjectLocation } from '../../core/contract.js';
import { isStorageError } from '../../core/errors.js';
import { mapConcurrently } from '../../core/concurrency.js';
import { checkWritePreconditions, normalizeEtag, notFound, statOrUndefined, tooLarge } from '../../core/objects.js';
import type { DriverSessionCompleteOptions, DriverSessionWriteOptions, SessionBody, SessionRecord } from '../../core/sessions.js';
import type { IncompleteUpload, ListPage, NotModified, ObjectInfo, ObjectStream, PresignedPost, PutFileResult, SignedUrl, VerifyOptions } from '../../core/types.js';
import { BASE_DRIVER_CAPABILITIES, BaseDriver } from '../base.js';
import { createS3Client, serviceIdOf, warnOnChecksumMode } from './client.js';
import { copyObject } from './copy.js';
import { conditionError, exhaustedError, retryVerdict, s3Error } from './errors.js';
import { objectInfoFromS3, toS3Metadata, writtenInfo } from './metadata.js';
import { abortUpload, completeUpload, listIncompleteUploads, uploadParts, type MultipartState, type S3Call } from './multipart.js';
import { resolveS3Options, type ResolvedS3Options, type S3DriverOptions } from './options.js';
import { PartSchedule } from './part-sizes.js';
import { payloadSha256, withPayloadHash } from './payload.js';
import { Presigner } from './presign.js';
import { listPage } from './list.js';
import { readObject } from './read.js';
import { fileChanged } from './file-parts.js';
import { putFileResumable } from './resume.js';
import { S3Sessions } from './sessions.js';
import { withRetry } from './retry.js';
import { verifyBucket } from './verify.js';
import { s3 } from './sdk.js';
import { deleteS3Keys, S3InternalFiles } from './internal-files.js';
import type { InternalFilesPage } from '../../core/internal-files.js';
import { allRecords, checkUserKey, deleteRecordsOf } from './upload-state.js';

/** How long a confirmed bucket is trusted when a HEAD finds no key. */
const BUCKET_CHECK_TTL_MS = 60_000;
/** HEADs of a listing page run at most this many at a time. */
const LIST_DETAIL_CONCURRENCY = 16;
/** Copies of a source replaced meanwhile before a copy gives up with E_PRECONDITION_FAILED. */
const COPY_ATTEMPTS = 3;

/**
 * Stores objects in an S3 bucket (optionally under a key prefix). Presigns URLs and POST
 * forms natively, keeps multipart uploads, and resumes an interrupted `putFile`; `move`
 * is left to Storage (copy, then delete). Keys under `.stowage/` are its own (upload
 * state): refused, and left out of listings.
 */
export class S3Driver extends BaseDriver {
  readonly name = 's3';
  readonly capabilities: DriverCapabilities;
  /** The resolved options (provider profile applied). */
  readonly options: ResolvedS3Options;
  readonly #client: S3Client;
  readonly #presigner: Presigner;
  readonly #location: ObjectLocation;
  /** Part sizes of bodies of unknown length. */
  readonly #schedule: PartSchedule;
  /** Upload sessions (sessions.ts). */
  readonly #sessions: S3Sessions;
  readonly #internal: S3InternalFiles;

  constructor(options: S3DriverOptions) {
    super();
    this.options = resolveS3Options(options);
    // A caller's client is theirs: used for every request and for signing, never destroyed here.
    this.#client = this.options.client ?? createS3Client(this.options);
    void warnOnChecksumMode(this.options);
    this.#presigner = new Presigner(this.options, this.#client);
    this.#location = { service: serviceIdOf(this.options), bucket: this.options.bucket, prefix: this.options.prefix };
    const { profile, partSize, maxParts, provider } = this.options;
    this.#schedule = new PartSchedule({ partSize, maxParts, equalParts: profile.equalParts, provider });
    this.capabilities = {
      ...BASE_DRIVER_CAPABILITIES,
      // What a body of unknown size may reach; a file (its size known) may be larger.
      conditionalWrites: profile.conditionalPut === 'full', rangeReads: true, keyIsPrefix: true, maxObjectSize: this.#schedule.capacity,
      nativeSignedUrls: true, nativePresignPost: true, multipartUploads: true, nativePutFile: true, sessions: true, internalFiles: true,
    };
    this.#internal = new S3InternalFiles(this.#call, this.options);
    this.#sessions = new S3Sessions({
      call: this.#call, options: this.options,
      conditions: (key, opts) => this.#conditions(key, opts, true),
      put: (key, data, opts, checks) => this.put(key, new PutBody(data, checks), opts),
    });
  }

  /** Runs one request with the retry policy; S3 and network errors become StorageErrors. */
  readonly #call: S3Call = (what, fn, replayable = true) =>
    withRetry(
      async () => {
        try {
          return await fn(this.#client);
        } catch (err) {
          throw s3Error(err, what);
        }
      },
      { policy: this.options.retry, classify: retryVerdict, replayable, exhausted: exhaustedError },
    );

  /** The S3 key of a caller's key; keys in the reserved area are refused here, for every operation. */
  #s3Key(key: string): string {
    checkUserKey(key);
    return this.options.prefix + key;
  }

  /**
   * HEADs an object; E_NOT_FOUND when missing. A HEAD 404 has no body to say whether the
   * key or the bucket is missing, so a miss checks the bucket (remembered for a minute).
   */
  async stat(key: string): Promise<ObjectInfo> {
    const out = await this.#call(`stat ${key}`, (c) => c.send(new (s3().HeadObjectCommand)({ Bucket: this.options.bucket, Key: this.#s3Key(key) }))).catch(async (err: unknown) => {
      if (!isStorageError(err, 'E_NOT_FOUND')) throw err;
      await this.#bucketExists();
      throw notFound(key, err);
    });
    return objectInfoFromS3(key, out);
  }

  #bucketSeenAt = 0;

  /** Rejects with E_BUCKET_NOT_FOUND when the bucket is gone; a recent success is trusted. */
  async #bucketExists(): Promise<void> {
    if (Date.now() - this.#bucketSeenAt < BUCKET_CHECK_TTL_MS) return;
    await verifyBucket(this.#call, this.options, {});
    this.#bucketSeenAt = Date.now();
  }

  /**
   * Reads up to the multipart threshold into memory: a smaller body goes up in one
   * PutObject (with its length and SHA-256, and re-sendable on retry); a larger one
   * continues as a multipart upload.
   */
  async put(key: string, body: PutBody, opts: DriverPutOptions): Promise<ObjectInfo> {
    checkUserKey(key);
    const iterator = body[Symbol.asyncIterator]();
    const head: Buffer[] = [];
    let headBytes = 0;
    let ended = false;
    while (headBytes < this.options.multipartThreshold) {
      const step = await iterator.next();
      if (step.done) {
        ended = true;
        break;
      }
      head.push(Buffer.from(step.value.buffer, step.value.byteOffset, step.value.byteLength));
      headBytes += step.value.byteLength;
    }
    if (ended) {
      const { sha256 } = body.complete();
      return this.#putSingle(key, Buffer.concat(head, headBytes), sha256, opts);
    }
    const rest: AsyncIterable<Uint8Array> = { [Symbol.asyncIterator]: () => iterator };
    return this.#putMultipart(key, head, rest, () => body.complete().sha256, { ...opts, knownSha256: body.expectedSha256 });
  }

  /**
   * Stores a local file: below the multipart threshold one PutObject of the file's
   * bytes (re-sent on retry); above it a resumable multipart upload (see resume.ts)
   * whose parts are read from the file at their offsets, which a later run of the same
   * file to the same key resumes.
   */
  override async putFile(key: string, path: string, opts: DriverPutOptions, checks: PutBodyChecks): Promise<ObjectInfo & PutFileResult> {
    const s3Key = this.#s3Key(key);
    const { handle, size } = await openRegularFile(path);
    try {
      if (checks.maxSize !== undefined && size > checks.maxSize) throw tooLarge(checks.maxSize);
      if (size < this.options.multipartThreshold) {
        const data = await handle.readFile();
        if (data.length !== size) throw fileChanged({ path }, key);
        return { ...(await this.put(key, new PutBody(data, checks), opts)), resumedBytes: 0 };
      }
      const stats = await handle.stat();
      const file = { handle, path, realPath: await realpath(path), size, mtimeMs: stats.mtimeMs, ino: stats.ino };
      const conditions = () => this.#conditions(key, opts, true);
      return await putFileResumable({ call: this.#call, options: this.options, key, s3Key, opts, checks, conditions }, file);
    } finally {
      await handle.close();
    }
  }

  /**
   * The conditions to send with a write. Those the service does not enforce are checked
   * here with a HEAD instead (not atomic; `capabilities.conditionalWrites` says so).
   */
  async #conditions(key: string, opts: DriverPutOptions, multipart: boolean): Promise<{ IfNoneMatch?: string; IfMatch?: string }> {
    const support = this.options.profile.conditionalPut;
    // What the service enforces on this request (multipart completion: only with full support).
    const enforcesNoneMatch = multipart ? support === 'full' : support !== 'none';
    const enforcesMatch = support === 'full';
    const checkHere = (opts.ifNoneMatch && !enforcesNoneMatch) || (opts.ifMatch !== undefined && !enforcesMatch);
    if (checkHere) checkWritePreconditions(key, await statOrUndefined(this, key), opts);
    return {
      IfNoneMatch: opts.ifNoneMatch && enforcesNoneMatch ? opts.ifNoneMatch : undefined,
      IfMatch: opts.ifMatch !== undefined && enforcesMatch ? `"${opts.ifMatch}"` : undefined,
    };
  }

  async #putSingle(key: string, data: Buffer, sha256: string, opts: DriverPutOptions): Promise<ObjectInfo> {
    const metadata = toS3Metadata(opts.metadata, sha256);
    const conditions = await this.#conditions(key, opts, false);
    const payloadHash = await payloadSha256(data);
    const out = await this.#call(`put ${key}`, (c) =>
      c.send(
        withPayloadHash(new (s3().PutObjectCommand)({
          Bucket: this.options.bucket,
          Key: this.#s3Key(key),
          // An empty Buffer makes the SDK warn about "a stream of unknown length"; no body says the same.
          Body: data.length > 0 ? data : undefined,
          ContentLength: data.length,
          ContentType: opts.contentType,
          CacheControl: opts.cacheControl,
          ContentDisposition: opts.contentDisposition,
          Metadata: metadata,
          ...conditions,
        }), payloadHash),
        { abortSignal: opts.signal },
      ),
    ).catch((err: unknown) => {
      throw conditionError(err, key, opts);
    });
    return writtenInfo(key, { ...opts, size: data.length, sha256, etag: out.ETag });
  }

  /**
   * Multipart upload. The SHA-256 is known only at the end, so unless the caller gave it,
   * the completed object gets it by a metadata-replacing copy onto itself (server-side).
   * Any failure aborts the upload, so no orphaned parts are billed.
   */
  async #putMultipart(key: string, head: Buffer[], rest: AsyncIterable<Uint8Array>, finish: () => string, opts: DriverPutOptions & { knownSha256?: string }): Promise<ObjectInfo> {
    const s3Key = this.#s3Key(key);
    const created = await this.#call(`start upload of ${key}`, (c) =>
      c.send(
        new (s3().CreateMultipartUploadCommand)({
          Bucket: this.options.bucket,
          Key: s3Key,
          ContentType: opts.contentType,
          CacheControl: opts.cacheControl,
          ContentDisposition: opts.contentDisposition,
          Metadata: toS3Metadata(opts.metadata, opts.knownSha256),
        }),
      ),
    );
    const state: MultipartState = { bucket: this.options.bucket, s3Key, uploadId: created.UploadId ?? '', partSize: this.options.partSize, parts: [] };
    try {
      const size = await uploadParts({ call: this.#call, state, concurrency: this.options.concurrency, schedule: this.#schedule, head, rest });
      const sha256 = finish();
      const etag = await completeUpload(this.#call, state, await this.#conditions(key, opts, true)).catch((err: unknown) => {
        throw conditionError(err, key, opts);
      });
      if (opts.knownSha256 === sha256) return writtenInfo(key, { ...opts, size, sha256, etag });
      const stamped = await copyObject(this.#call, this.options, { from: s3Key, to: s3Key, size, ifMatch: etag, replace: { ...opts, metadata: toS3Metadata(opts.metadata, sha256) } });
      return writtenInfo(key, { ...opts, size, sha256, etag: stamped });
    } catch (err) {
      await abortUpload(this.#call, state);
      throw err;
    }
  }

  /** One GetObject, carrying the range and `ifNoneMatch` (see read.ts). */
  read(key: string, opts: UnconditionalReadOptions): Promise<ObjectStream>;
  read(key: string, opts: DriverReadOptions): Promise<ObjectStream | NotModified>;
  async read(key: string, opts: DriverReadOptions): Promise<ObjectStream | NotModified> {
    return readObject({ call: this.#call, bucket: this.options.bucket, s3Key: this.#s3Key(key), stat: () => this.stat(key) }, key, opts);
  }

  /** DeleteObject; S3 answers a missing key with success too. */
  async delete(key: string): Promise<void> {
    await this.#call(`delete ${key}`, (c) => c.send(new (s3().DeleteObjectCommand)({ Bucket: this.options.bucket, Key: this.#s3Key(key) })));
  }

  /** DeleteObjects in one request per 1000 keys; any per-key error is thrown. */
  async deleteMany(keys: readonly string[]): Promise<number> {
    await deleteS3Keys(this.#call, this.options.bucket, keys.map((k) => this.#s3Key(k))); // every key checked before any is deleted
    return keys.length;
  }

  /** Server-side copy keeping metadata and checksum (multipart copy above 5 GiB). */
  async copy(from: string, to: string): Promise<ObjectInfo> {
    if (from === to) return this.stat(from);
    return this.#copyIn(this, this.#location, from, to);
  }

  /**
   * Copies an object of another driver whose location is on the same service with the
   * same keys (another bucket or prefix) inside the service: the bytes never pass
   * through this process. The source may be wrapped in any layers, which forward its
   * location. Resolves undefined for any other source, which must then be streamed.
   */
  override async copyFrom(source: Driver, from: string, to: string): Promise<ObjectInfo | undefined> {
    const where = source.location();
    if (where?.service !== this.#location.service) return undefined;
    return this.#copyIn(source, where, from, to);
  }

  /**
   * Server-side copy of `source`'s `from` (at `where`) to this driver's `to`: of the object
   * a stat found, on the condition of its ETag, so what is returned describes the copy. A
   * source replaced between the stat and the copy is looked at and copied again, up to
   * COPY_ATTEMPTS times. A service that copied another object all the same (one that
   * ignores the condition) is caught by the copy's ETag, and the copy is stat'd instead.
   */
  async #copyIn(source: Driver, where: ObjectLocation, from: string, to: string): Promise<ObjectInfo> {
    for (let attempt = 1; ; attempt++) {
      const info = await source.stat(from);
      const sourceFields = { ...info, metadata: toS3Metadata(info.metadata, info.sha256) };
      let etag: string | undefined;
      try {
        etag = await copyObject(this.#call, this.options, { fromBucket: where.bucket, from: where.prefix + from, to: this.#s3Key(to), size: info.size, ifMatch: info.etag, sourceFields });
      } catch (err) {
        if (isStorageError(err, 'E_PRECONDITION_FAILED') && attempt < COPY_ATTEMPTS) continue;
        throw err;
      }
      const copied = normalizeEtag(etag ?? '');
      if (copied !== '' && copied !== normalizeEtag(info.etag)) return this.stat(to);
      return { ...info, key: to, etag: copied || info.etag, lastModified: new Date() };
    }
  }

  /** The bucket and prefix on this service (endpoint, region and keys), for copies between S3 drivers. */
  override location(): ObjectLocation {
    return this.#location;
  }

  /**
   * One ListObjectsV2 page (see list.ts): keys no Stowage key can address, and Stowage's
   * own objects, are skipped; with `details`, each object is HEADed.
   */
  async list(opts: DriverListOptions): Promise<ListPage> {
    return listPage(this.#call, this.options, opts, (keys) => mapConcurrently(keys, LIST_DETAIL_CONCURRENCY, (key) => statOrUndefined(this, key)));
  }

  /** Presigned GET or PUT on the service itself (or on `publicUrl`). */
  override async signedUrl(key: string, opts: DriverSignedUrlOptions): Promise<SignedUrl> {
    return this.#presigner.signedUrl(this.#s3Key(key), opts);
  }

  /** A presigned POST form for browser uploads, bounded by size and content type. */
  override async presignPost(key: string, opts: DriverPresignPostOptions): Promise<PresignedPost> {
    return this.#presigner.post(this.#s3Key(key), opts);
  }

  /** HeadBucket; with `createBucket`, creates a missing bucket. Each failure says what to fix. */
  override async verify(opts: VerifyOptions = {}): Promise<Record<string, unknown>> {
    return verifyBucket(this.#call, this.options, opts);
  }

  /** Same as `verify()` without creating anything. */
  async check(): Promise<Record<string, unknown>> {
    return this.verify();
  }

  /**
   * Multipart uploads started under `prefix` and never completed or aborted
   * (ListMultipartUploads, every page), and the states of resumable uploads whose
   * upload is gone (completed or aborted before the state was deleted), as uploads
   * initiated when their state was created: aborting one deletes the state. The states
   * are listed first, so an upload started meanwhile is never taken for a gone one.
   */
  override async incompleteUploads(prefix: string): Promise<IncompleteUpload[]> {
    const [records, sessionUploads] = await Promise.all([allRecords(this.#call, this.options), this.#sessions.uploadIds()]);
    const uploads = (await listIncompleteUploads(this.#call, this.options, prefix)).filter((u) => !sessionUploads.has(u.uploadId));
    const live = new Set(uploads.map((u) => u.uploadId));
    const gone = records.filter(({ record }) => record.key.startsWith(prefix) && !live.has(record.uploadId));
    return [...uploads, ...gone.map(({ record }) => ({ key: record.key, uploadId: record.uploadId, initiated: new Date(record.createdAt) }))];
  }

  /** Aborts an incomplete multipart upload, freeing its parts, and deletes its resume state; one already gone resolves. */
  override async abortUpload(upload: IncompleteUpload): Promise<void> {
    await this.#call(`abort upload of ${upload.key}`, (c) => c.send(new (s3().AbortMultipartUploadCommand)({ Bucket: this.options.bucket, Key: this.#s3Key(upload.key), UploadId: upload.uploadId }))).catch((err: unknown) => {
      if (!isStorageError(err, 'E_NOT_FOUND')) throw err;
    });
    await deleteRecordsOf(this.#call, this.options, upload.key, upload.uploadId);
  }

  /** Writes the new session's state under `.stowage/sessions/` (see sessions.ts). */
  override createSession(record: SessionRecord): Promise<SessionRecord> {
    return this.#sessions.create(record);
  }

  /** The session's record, its offset checked against the parts and tail the bucket holds. */
  override getSession(id: string): Promise<SessionRecord> {
    return this.#sessions.get(id);
  }

  /** Appends at the offset: whole parts uploaded, the remainder kept in a tail object. */
  override writeSession(id: string, body: SessionBody, opts: DriverSessionWriteOptions): Promise<SessionRecord> {
    return this.#sessions.write(id, body, opts);
  }

  /** Uploads the tail as the last part and completes the upload (one PutObject for a session smaller than a part). */
  override completeSession(id: string, opts: DriverSessionCompleteOptions): Promise<ObjectInfo> {
    return this.#sessions.complete(id, opts);
  }

  /** Aborts the session's upload and deletes its tails and state. */
  override abortSession(id: string): Promise<void> {
    return this.#sessions.abort(id);
  }

  /** Streams a finished partial session, sealed into an object of its own first (sessions.ts). */
  override readSession(id: string, opts: { signal?: AbortSignal }): Promise<Readable> {
    return this.#sessions.read(id, opts.signal);
  }

  /** The sessions whose key starts with `prefix`, from their state objects. */
  override listSessions(prefix: string): Promise<SessionRecord[]> {
    return this.#sessions.list(prefix);
  }

  /** Closes the connection pool, unless the client is the caller's (theirs to destroy). */
  override async close(): Promise<void> {
    if (!this.options.client) this.#client.destroy();
    this.#presigner.close();
  }

  /** Objects under `.stowage/internal/` (see internal-files.ts). */
  override async putInternal(name: string, data: Uint8Array): Promise<void> {
    return this.#internal.put(name, data);
  }

  override async readInternal(name: string): Promise<Uint8Array | undefined> {
    return this.#internal.read(name);
  }

  override async deleteInternal(names: readonly string[]): Promise<void> {
    return this.#internal.delete(names);
  }

  override async listInternal(prefix: string, cursor?: string): Promise<InternalFilesPage> {
    return this.#internal.list(prefix, cursor);
  }
}
