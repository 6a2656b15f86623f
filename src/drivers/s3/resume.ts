/**
 * `putFile` of a large file as a resumable multipart upload. The upload's state lives
 * in the bucket (upload-state.ts); a later run of the same file (same real path, size,
 * mtime and inode) to the same key finds it, lists the parts the upload holds, adopts
 * those that match the file, and sends only the others.
 *
 * Before the upload is created the file is read once for its SHA-256 and each part's
 * (file-parts.ts): the upload carries the object's digest from its creation, so the
 * object is never visible without it, and the state keeps the part digests. Every part
 * read afterwards, to be sent or to be checked, in this run or in a later one, must
 * hash to its recorded digest, so the bytes stored are the bytes the object's digest
 * covers; a part that does not is a file that changed: a fresh upload fails, a resumed
 * one is aborted and starts over.
 *
 * A stored part is adopted when its size is the expected one and either its ETag is
 * the one the state recorded for the part's digest, or (a part stored but not yet
 * recorded when the process died) its ETag equals the local part's MD5. A resumed run
 * checks the stored parts while it sends the missing ones, so the re-read of the half
 * already stored overlaps the upload instead of coming before it.
 *
 * An interruption (a cancel, a crash, the backend unreachable after retries) leaves the
 * upload and its state for the next run (`stowage gc uploads` removes those never
 * resumed); any other failure aborts the upload and deletes its state.
 */
import { createHash } from 'node:crypto';
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
import { fileChanged, fileDigests, partSpan, readAt, type LocalFile } from './file-parts.js';
import { equalPartSize } from './part-sizes.js';
import { payloadSha256, withPayloadHash } from './payload.js';
import { s3 } from './sdk.js';
import { RecordWriter, deleteRecord, readRecord, recordKey, writeRecord, type UploadRecord } from './upload-state.js';

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

/** An upload of the file with its digests, as its state holds it. */
type DigestedRecord = UploadRecord & Required<Pick<UploadRecord, 'sha256' | 'partSha256'>>;

/** A resumed upload whose parts are no longer the file's: it was aborted, and the caller starts over. */
class StaleUpload extends Error {}

/** The attributes the object must end with: those of this call, with the SHA-256 when known. */
function attributesOf(opts: DriverPutOptions, sha256: string | undefined): ObjectAttributes {
  return { contentType: opts.contentType, cacheControl: opts.cacheControl, contentDisposition: opts.contentDisposition, metadata: toS3Metadata(opts.metadata, sha256) };
}

function sameAttributes(a: ObjectAttributes, b: ObjectAttributes): boolean {
  const canonical = (x: ObjectAttributes) => JSON.stringify([x.contentType, x.cacheControl ?? null, x.contentDisposition ?? null, Object.entries(x.metadata).sort(([m], [n]) => (m < n ? -1 : 1))]);
  return canonical(a) === canonical(b);
}

/** E_CHECKSUM_MISMATCH for a file whose SHA-256 is not the one the caller expected. */
function checksumMismatch(key: string, expected: string, actual: string): StorageError {
  return new StorageError('E_CHECKSUM_MISMATCH', `SHA-256 mismatch: expected ${expected}, the file has ${actual}`, { key, details: { expected, actual } });
}

/** The state of an earlier run to resume from, with the parts its upload holds; undefined to start over. */
async function earlierRun(ctx: ResumeContext, stateKey: string, file: LocalFile): Promise<{ record: DigestedRecord; stored: Map<number, StoredPart> } | undefined> {
  const record = await readRecord(ctx.call, ctx.options, stateKey);
  if (!record || record.key !== ctx.key || record.size !== file.size || record.mtimeMs !== file.mtimeMs) return undefined;
  // A part size this run could not have chosen (a state written by hand, or for other limits) is not trusted.
  if (record.partSize < MIN_PART_SIZE || record.partSize > MAX_SINGLE_PUT || Math.ceil(file.size / record.partSize) > ctx.options.maxParts) return undefined;
  // Without the digests read before the upload was created (a state of an earlier version), nothing can be
  // checked: that upload is aborted, as the new one's state takes the place of its state.
  if (record.sha256 === undefined || record.partSha256?.length !== Math.ceil(file.size / record.partSize)) {
    await abortUpload(ctx.call, { bucket: ctx.options.bucket, s3Key: ctx.s3Key, uploadId: record.uploadId, partSize: record.partSize, parts: [] });
    return undefined;
  }
  const stored = await listStoredParts(ctx.call, ctx.options.bucket, ctx.s3Key, record.uploadId);
  return stored && { record: record as DigestedRecord, stored };
}

/**
 * Reads the file's digests, then starts a new upload and writes its state at once, so
 * a crash from here on can resume. The upload is created with the file's SHA-256 in
 * its metadata: then the object is never visible without it (a completed upload whose
 * metadata a later copy had to fix would be, for a moment, or for good if that copy
 * failed). A file that does not have the SHA-256 the caller expects fails here, before
 * anything is created.
 */
async function startUpload(ctx: ResumeContext, stateKey: string, file: LocalFile): Promise<DigestedRecord> {
  const { call, options: o, opts, checks } = ctx;
  const partSize = equalPartSize(file.size, o.partSize, o.maxParts);
  const digests = await fileDigests(file, ctx.key, partSize);
  if (checks.sha256 !== undefined && checks.sha256 !== digests.sha256) throw checksumMismatch(ctx.key, checks.sha256, digests.sha256);
  const attributes = attributesOf(opts, digests.sha256);
  const created = await call(`start upload of ${ctx.key}`, (c) =>
    c.send(new (s3().CreateMultipartUploadCommand)({ Bucket: o.bucket, Key: ctx.s3Key, ContentType: attributes.contentType, CacheControl: attributes.cacheControl, ContentDisposition: attributes.contentDisposition, Metadata: attributes.metadata }), { abortSignal: opts.signal }),
  );
  const record: DigestedRecord = {
    version: 1, key: ctx.key, uploadId: created.UploadId ?? '', partSize, size: file.size, mtimeMs: file.mtimeMs, parts: [], attributes, createdAt: new Date().toISOString(), ...digests,
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
  const stateKey = recordKey(ctx.options, ctx.key, file);
  // Conditions checked by HEAD fail here rather than after every part was sent (they are checked again at completion).
  if (ctx.opts.ifNoneMatch !== undefined || ctx.opts.ifMatch !== undefined) await ctx.conditions();
  const earlier = await earlierRun(ctx, stateKey, file);
  if (earlier) {
    const { record } = earlier;
    if (ctx.checks.sha256 !== undefined && ctx.checks.sha256 !== record.sha256) {
      // Not the digest the upload was created with: it can never complete. Whether the file changed
      // or the caller is wrong, the fresh start's read of the file tells (a wrong one fails there).
      await discard(ctx, { bucket: ctx.options.bucket, s3Key: ctx.s3Key, uploadId: record.uploadId, partSize: record.partSize, parts: [] }, stateKey);
    } else {
      try {
        return await transfer(ctx, file, { stateKey, record, stored: earlier.stored });
      } catch (err) {
        if (!(err instanceof StaleUpload)) throw err;
      }
    }
  }
  return transfer(ctx, file, { stateKey, record: await startUpload(ctx, stateKey, file) });
}

/** The upload `transfer` works on: its state, and (when resuming) the parts it already holds. */
interface Transfer {
  stateKey: string;
  record: DigestedRecord;
  stored?: Map<number, StoredPart>;
}

/**
 * Sends the parts the upload lacks and checks those it holds, at once: one task reads
 * and sends the missing parts in order (at most `concurrency` in flight), another reads
 * the stored ones and adopts each that matches the file, handing the others to be sent.
 * Then completes the upload.
 */
async function transfer(ctx: ResumeContext, file: LocalFile, job: Transfer): Promise<ObjectInfo & { resumedBytes: number }> {
  const { call, options: o, opts, checks, key } = ctx;
  const { stateKey, record } = job;
  const stored = job.stored ?? new Map<number, StoredPart>();
  const signal = opts.signal ?? checks.signal;
  const writer = new RecordWriter(() => writeRecord(call, o, stateKey, record));
  const state: MultipartState = { bucket: o.bucket, s3Key: ctx.s3Key, uploadId: record.uploadId, partSize: record.partSize, parts: [] };
  const recorded = new Map(record.parts.map((p) => [p.partNumber, p]));
  const partNumbers = record.partSha256.map((_, i) => i + 1);
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

  /** Reads a part and checks it is the part the object's SHA-256 was read from. */
  const readPart = async (partNumber: number): Promise<{ data: Buffer; sha256: string }> => {
    if (signal?.aborted) throw abortedError(signal);
    const { offset, size } = partSpan(file, record.partSize, partNumber);
    const data = await readAt(file, key, offset, size);
    const sha256 = await payloadSha256(data);
    if (sha256 !== record.partSha256[partNumber - 1]) throw job.stored ? new StaleUpload() : fileChanged(file, key);
    return { data, sha256 };
  };

  /** Sends a part read by {@link readPart} once a slot is free (the wait and the start are one step, so two tasks never overfill). */
  const send = async (partNumber: number, data: Buffer, sha256: string): Promise<void> => {
    while (inFlight.size >= o.concurrency) await Promise.race(inFlight);
    if (failure !== undefined) return;
    let body: Buffer | undefined = data;
    const upload = call(`upload part ${partNumber} of ${key}`, async (c) => {
      // A retry reads the part again, and refuses to send other bytes than the ones hashed.
      const attempt = body ?? (await readAt(file, key, partSpan(file, record.partSize, partNumber).offset, data.length));
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

  /** Whether the stored part holds these bytes: its size, and the ETag recorded with this digest or the bytes' MD5. */
  const holds = (have: StoredPart, partNumber: number, data: Buffer, sha256: string): boolean => {
    const mine = recorded.get(partNumber);
    if (have.size !== data.length) return false;
    return mine !== undefined && mine.etag === have.etag ? mine.sha256 === sha256 : createHash('md5').update(data).digest('hex') === have.etag;
  };

  const sendMissing = async () => {
    for (const partNumber of partNumbers.filter((n) => !stored.has(n))) {
      if (failure !== undefined) return;
      const { data, sha256 } = await readPart(partNumber);
      await send(partNumber, data, sha256);
    }
  };
  const checkStored = async () => {
    for (const [partNumber, have] of [...stored].filter(([n]) => n <= partNumbers.length).sort(([a], [b]) => a - b)) {
      if (failure !== undefined) return;
      const { data, sha256 } = await readPart(partNumber);
      if (!holds(have, partNumber, data, sha256)) await send(partNumber, data, sha256);
      else {
        resumedBytes += data.length;
        settled({ partNumber, size: data.length, etag: have.etag, sha256 });
      }
    }
  };
  const task = (work: () => Promise<void>) => work().catch((err: unknown) => void (failure ??= err));

  try {
    await Promise.all([task(sendMissing), task(checkStored)]);
    await Promise.allSettled(inFlight);
    if (failure !== undefined) throw failure as Error; // StorageErrors (rejections of S3Call, file reads) or a StaleUpload
    const after = await file.handle.stat();
    if (after.size !== file.size || after.mtimeMs !== file.mtimeMs) throw fileChanged(file, key);
  } catch (err) {
    await writer.flush();
    if (!resumable(err)) await discard(ctx, state, stateKey);
    throw err;
  }
  await writer.flush();
  return finish(ctx, { state, stateKey, record, resumedBytes });
}

/** Aborts the upload and deletes its state. */
async function discard(ctx: ResumeContext, state: MultipartState, stateKey: string): Promise<void> {
  await abortUpload(ctx.call, state);
  await deleteRecord(ctx.call, ctx.options, stateKey);
}

/**
 * Completes the upload and deletes its state. The object ends with
 * this call's attributes and its SHA-256: when the upload was created with other ones
 * (an earlier run's), a metadata-replacing copy onto itself sets them, as a streamed
 * multipart put does.
 */
async function finish(ctx: ResumeContext, done: { state: MultipartState; stateKey: string; record: DigestedRecord; resumedBytes: number }): Promise<ObjectInfo & { resumedBytes: number }> {
  const { call, options: o, opts, key } = ctx;
  const { state, stateKey, record } = done;
  const { sha256, size } = record;
  state.parts.sort((a, b) => a.partNumber - b.partNumber);
  let etag: string | undefined;
  try {
    etag = await completeUpload(call, state, await ctx.conditions());
  } catch (err) {
    if (!resumable(err)) await discard(ctx, state, stateKey);
    throw conditionError(err, key, opts);
  }
  await deleteRecord(call, o, stateKey);
  const wanted = attributesOf(opts, sha256);
  if (!sameAttributes(record.attributes, wanted)) {
    etag = await copyObject(call, o, { from: ctx.s3Key, to: ctx.s3Key, size, ifMatch: etag, replace: wanted });
  }
  return { ...writtenInfo(key, { ...opts, size, sha256, etag }), resumedBytes: done.resumedBytes };
}
