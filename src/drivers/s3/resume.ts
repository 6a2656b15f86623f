/**
 * `putFile` of a large file as a resumable multipart upload. The upload's state lives
 * in the bucket (upload-state.ts); a later run of the same file (same real path, size,
 * mtime and inode) to the same key finds it, lists the parts the upload holds, adopts
 * those that match the file, and sends only the others.
 *
 * A stored part is adopted when its size is the expected one and either its ETag is
 * the one the state recorded and the recorded SHA-256 equals the local part's, or (a
 * part that was stored but not yet recorded when the process died) its ETag equals the
 * local part's MD5, computed for those parts only. The object's SHA-256 is read from the
 * file before the upload starts (so the upload carries it from its creation), and again
 * while the parts are read in order: a part that is adopted is still read and hashed,
 * not sent, so resuming costs one local read of the part already stored.
 *
 * An interruption (a cancel, a crash, the backend unreachable after retries) leaves the
 * upload and its state for the next run (`stowage gc uploads` removes those never
 * resumed); any other failure aborts the upload and deletes its state.
 */
import { createHash } from 'node:crypto';
import type { FileHandle } from 'node:fs/promises';
import type { PutBodyChecks } from '../../core/body.js';
import type { DriverPutOptions } from '../../core/contract.js';
import { StorageError, abortedError } from '../../core/errors.js';
import { normalizeEtag } from '../../core/objects.js';
import type { ObjectAttributes, ObjectInfo } from '../../core/types.js';
import { copyObject } from './copy.js';
import { conditionError } from './errors.js';
import { toS3Metadata, writtenInfo } from './metadata.js';
import { abortUpload, completeUpload, listStoredParts, type MultipartState, type S3Call, type StoredPart } from './multipart.js';
import { MAX_SINGLE_PUT, MIN_PART_SIZE, type ResolvedS3Options } from './options.js';
import { equalPartSize } from './part-sizes.js';
import { payloadSha256, withPayloadHash } from './payload.js';
import { s3 } from './sdk.js';
import { RecordWriter, deleteRecord, readRecord, recordKey, writeRecord, type FileIdentity, type UploadRecord } from './upload-state.js';

/** What the driver gives a resumable upload. */
export interface ResumeContext {
  call: S3Call;
  options: ResolvedS3Options;
  key: string;
  s3Key: string;
  opts: DriverPutOptions;
  checks: PutBodyChecks;
  /** The conditions to send with the completion (ifNoneMatch / ifMatch, as put sends them). */
  conditions: () => Promise<{ IfNoneMatch?: string; IfMatch?: string }>;
}

/** The open file and what identifies it. */
export interface LocalFile extends FileIdentity {
  handle: FileHandle;
  path: string;
}


/** The attributes the object must end with: those of this call, with the SHA-256 when known. */
function attributesOf(opts: DriverPutOptions, sha256: string | undefined): ObjectAttributes {
  return { contentType: opts.contentType, cacheControl: opts.cacheControl, contentDisposition: opts.contentDisposition, metadata: toS3Metadata(opts.metadata, sha256) };
}

function sameAttributes(a: ObjectAttributes, b: ObjectAttributes): boolean {
  const canonical = (x: ObjectAttributes) => JSON.stringify([x.contentType, x.cacheControl ?? null, x.contentDisposition ?? null, Object.entries(x.metadata).sort(([m], [n]) => (m < n ? -1 : 1))]);
  return canonical(a) === canonical(b);
}

/** E_INVALID_ARGUMENT for a local file that changed while it was being stored. */
export function fileChanged(file: { path: string }, key: string): StorageError {
  return new StorageError('E_INVALID_ARGUMENT', `${file.path} changed while it was being stored; nothing was stored`, { key });
}

/** Reads exactly `size` bytes at `offset`; a file that got shorter is a changed file. */
async function readAt(file: LocalFile, key: string, offset: number, size: number): Promise<Buffer> {
  const data = Buffer.allocUnsafe(size);
  for (let filled = 0; filled < size; ) {
    const { bytesRead } = await file.handle.read(data, filled, size - filled, offset + filled);
    if (bytesRead === 0) throw fileChanged(file, key);
    filled += bytesRead;
  }
  return data;
}

/** The state of an earlier run to resume from, with the parts its upload holds; undefined to start over. */
async function earlierRun(ctx: ResumeContext, stateKey: string, file: LocalFile): Promise<{ record: UploadRecord; stored: Map<number, StoredPart> } | undefined> {
  const record = await readRecord(ctx.call, ctx.options, stateKey);
  if (!record || record.key !== ctx.key || record.size !== file.size || record.mtimeMs !== file.mtimeMs) return undefined;
  // A part size this run could not have chosen (a state written by hand, or for other limits) is not trusted.
  if (record.partSize < MIN_PART_SIZE || record.partSize > MAX_SINGLE_PUT || Math.ceil(file.size / record.partSize) > ctx.options.maxParts) return undefined;
  const stored = await listStoredParts(ctx.call, ctx.options.bucket, ctx.s3Key, record.uploadId);
  return stored && { record, stored };
}

/** Bytes read at once by {@link fileSha256}. */
const HASH_READ_BYTES = 8 * 1024 * 1024;

/** The SHA-256 of the whole file, read in order with Node's native hash (about 1.7 GB/s from the page cache). */
async function fileSha256(file: LocalFile, key: string): Promise<string> {
  const hash = createHash('sha256');
  for (let offset = 0; offset < file.size; offset += HASH_READ_BYTES) hash.update(await readAt(file, key, offset, Math.min(HASH_READ_BYTES, file.size - offset)));
  return hash.digest('hex');
}

/**
 * Starts a new upload and writes its state at once, so a crash from here on can resume.
 * The upload is created with the file's SHA-256 in its metadata, read first when the
 * caller gave none: then the object is never visible without it (a completed upload
 * whose metadata a later copy had to fix would be, for a moment, or for good if that
 * copy failed). The cost is one more read of the local file; the part loop's own hash
 * still checks the file did not change in between.
 */
async function startUpload(ctx: ResumeContext, stateKey: string, file: LocalFile): Promise<UploadRecord> {
  const { call, options: o, opts, checks } = ctx;
  const attributes = attributesOf(opts, checks.sha256 ?? (await fileSha256(file, ctx.key)));
  const created = await call(`start upload of ${ctx.key}`, (c) =>
    c.send(new (s3().CreateMultipartUploadCommand)({ Bucket: o.bucket, Key: ctx.s3Key, ContentType: attributes.contentType, CacheControl: attributes.cacheControl, ContentDisposition: attributes.contentDisposition, Metadata: attributes.metadata }), { abortSignal: opts.signal }),
  );
  const record: UploadRecord = {
    version: 1, key: ctx.key, uploadId: created.UploadId ?? '', partSize: equalPartSize(file.size, o.partSize, o.maxParts), size: file.size, mtimeMs: file.mtimeMs, parts: [], attributes, createdAt: new Date().toISOString(),
  };
  await writeRecord(call, o, stateKey, record).catch(() => undefined); // without it the run still works; only a resume is lost
  return record;
}

/** Whether a failure leaves the upload for a later run (an interruption) rather than aborting it. */
function resumable(err: unknown): boolean {
  return err instanceof StorageError && (err.retryable || err.code === 'E_ABORTED');
}

/** Uploads (or resumes) `file` to `ctx.key`; resolves the stored object's info and the bytes not sent again. */
export async function putFileResumable(ctx: ResumeContext, file: LocalFile): Promise<ObjectInfo & { resumedBytes: number }> {
  const { call, options: o, opts, checks, key } = ctx;
  const signal = opts.signal ?? checks.signal;
  const stateKey = recordKey(o, key, file);
  // Conditions checked by HEAD fail here rather than after every part was sent (they are checked again at completion).
  if (opts.ifNoneMatch !== undefined || opts.ifMatch !== undefined) await ctx.conditions();
  const earlier = await earlierRun(ctx, stateKey, file);
  const record = earlier?.record ?? (await startUpload(ctx, stateKey, file));
  const stored = earlier?.stored ?? new Map<number, StoredPart>();
  const writer = new RecordWriter(() => writeRecord(call, o, stateKey, record));
  const state: MultipartState = { bucket: o.bucket, s3Key: ctx.s3Key, uploadId: record.uploadId, partSize: record.partSize, parts: [] };
  const recorded = new Map(record.parts.map((p) => [p.partNumber, p]));
  const partCount = Math.max(1, Math.ceil(file.size / record.partSize));
  const whole = createHash('sha256');
  const inFlight = new Set<Promise<void>>();
  let failure: unknown;
  let resumedBytes = 0;
  let doneBytes = 0;

  const settled = (part: { partNumber: number; size: number; etag: string; sha256: string }) => {
    state.parts.push(part);
    if (recorded.get(part.partNumber)?.etag !== part.etag) {
      recorded.set(part.partNumber, part);
      record.parts = [...recorded.values()].sort((a, b) => a.partNumber - b.partNumber);
      writer.update();
    }
    doneBytes += part.size;
    checks.onProgress?.({ bytes: doneBytes, total: file.size });
  };

  const send = (partNumber: number, offset: number, data: Buffer, sha256: string): void => {
    let body: Buffer | undefined = data;
    const upload = call(`upload part ${partNumber} of ${key}`, async (c) => {
      // A retry reads the part again, and refuses to send other bytes than the ones hashed.
      const attempt = body ?? (await readAt(file, key, offset, data.length));
      body = undefined;
      if (attempt !== data && (await payloadSha256(attempt)) !== sha256) throw fileChanged(file, key);
      return c.send(withPayloadHash(new (s3().UploadPartCommand)({ Bucket: o.bucket, Key: ctx.s3Key, UploadId: record.uploadId, PartNumber: partNumber, Body: attempt, ContentLength: attempt.length }), sha256), { abortSignal: signal });
    }).then(
      (out) => settled({ partNumber, size: data.length, etag: normalizeEtag(out.ETag ?? ''), sha256 }),
      (err: unknown) => void (failure ??= err),
    );
    inFlight.add(upload);
    void upload.finally(() => inFlight.delete(upload));
  };

  try {
    try {
      for (let partNumber = 1; partNumber <= partCount && failure === undefined; partNumber++) {
        if (signal?.aborted) throw abortedError(signal);
        while (inFlight.size >= o.concurrency) await Promise.race(inFlight);
        const offset = (partNumber - 1) * record.partSize;
        const data = await readAt(file, key, offset, Math.min(record.partSize, file.size - offset));
        whole.update(data);
        const sha256 = await payloadSha256(data);
        const have = stored.get(partNumber);
        const mine = recorded.get(partNumber);
        const adopt = have !== undefined && have.size === data.length && (mine !== undefined && mine.etag === have.etag ? mine.sha256 === sha256 : createHash('md5').update(data).digest('hex') === have.etag);
        if (adopt) {
          resumedBytes += data.length;
          settled({ partNumber, size: data.length, etag: have.etag, sha256 });
        } else send(partNumber, offset, data, sha256);
      }
    } finally {
      await Promise.allSettled(inFlight);
    }
    if (failure !== undefined) throw failure as Error; // rejections of S3Call are StorageErrors
    const after = await file.handle.stat();
    if (after.size !== file.size || after.mtimeMs !== file.mtimeMs) throw fileChanged(file, key);
  } catch (err) {
    await writer.flush();
    if (!resumable(err)) await discard(ctx, state, stateKey);
    throw err;
  }
  await writer.flush();
  return finish(ctx, { state, stateKey, record, sha256: whole.digest('hex'), size: file.size, resumedBytes });
}

/** Aborts the upload and deletes its state. */
async function discard(ctx: ResumeContext, state: MultipartState, stateKey: string): Promise<void> {
  await abortUpload(ctx.call, state);
  await deleteRecord(ctx.call, ctx.options, stateKey);
}

/**
 * Checks the SHA-256, completes the upload and deletes its state. The object ends with
 * this call's attributes and its SHA-256: when the upload was created with other ones
 * (no digest known then, or an earlier run's), a metadata-replacing copy onto itself
 * sets them, as a streamed multipart put does.
 */
async function finish(ctx: ResumeContext, done: { state: MultipartState; stateKey: string; record: UploadRecord; sha256: string; size: number; resumedBytes: number }): Promise<ObjectInfo & { resumedBytes: number }> {
  const { call, options: o, opts, checks, key } = ctx;
  const { state, stateKey, sha256, size } = done;
  state.parts.sort((a, b) => a.partNumber - b.partNumber);
  if (checks.sha256 !== undefined && checks.sha256 !== sha256) {
    await discard(ctx, state, stateKey);
    throw new StorageError('E_CHECKSUM_MISMATCH', `SHA-256 mismatch: expected ${checks.sha256}, the file has ${sha256}`, { key, details: { expected: checks.sha256, actual: sha256 } });
  }
  let etag: string | undefined;
  try {
    etag = await completeUpload(call, state, await ctx.conditions());
  } catch (err) {
    if (!resumable(err)) await discard(ctx, state, stateKey);
    throw conditionError(err, key, opts);
  }
  await deleteRecord(call, o, stateKey);
  const wanted = attributesOf(opts, sha256);
  if (!sameAttributes(done.record.attributes, wanted)) {
    etag = await copyObject(call, o, { from: ctx.s3Key, to: ctx.s3Key, size, ifMatch: etag, replace: wanted });
  }
  return { ...writtenInfo(key, { ...opts, size, sha256, etag }), resumedBytes: done.resumedBytes };
}
