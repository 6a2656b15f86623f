/**
 * Multipart uploads, orchestrated by Stowage rather than lib-storage: part sizes from a
 * {@link PartSchedule} (equal where the provider needs it, R2; growing for bodies of
 * unknown size elsewhere), bounded concurrency, each part a Buffer so it can be re-sent
 * on retry, and memory bounded by partSize x (concurrency + 1) until the parts grow past
 * that budget (then one part in flight and one filling). Parts are recorded as plain
 * data ({@link MultipartState}) so an upload can be persisted and resumed later.
 */
import type { S3Client } from '@aws-sdk/client-s3';
import { ByteQueue } from '../../core/byte-queue.js';
import { isStorageError } from '../../core/errors.js';
import { isAddressableKey } from '../../core/keys.js';
import { normalizeEtag } from '../../core/objects.js';
import type { IncompleteUpload } from '../../core/types.js';
import type { ResolvedS3Options } from './options.js';
import type { PartSchedule } from './part-sizes.js';
import { payloadSha256, withPayloadHash } from './payload.js';
import { s3 } from './sdk.js';

/** One uploaded part: what CompleteMultipartUpload needs. */
export interface UploadedPart {
  partNumber: number;
  etag: string;
  size: number;
}

/** A multipart upload in progress, as plain data. */
export interface MultipartState {
  bucket: string;
  /** The full S3 key (prefix included). */
  s3Key: string;
  uploadId: string;
  /** The first part's size (with equal parts, every part's but the last). */
  partSize: number;
  parts: UploadedPart[];
}

/** Runs one S3 request with retries; `replayable` false forbids re-sending. */
export type S3Call = <T>(what: string, fn: (client: S3Client) => Promise<T>, replayable?: boolean) => Promise<T>;

/** Options of {@link uploadParts}. */
export interface UploadPartsOptions {
  call: S3Call;
  state: MultipartState;
  concurrency: number;
  /** The part sizes, and the limit past which the body is E_TOO_LARGE. */
  schedule: PartSchedule;
  /** Bytes already read from the body, to be sent first (emptied as they are used). */
  head: Buffer[];
  /** The rest of the body. */
  rest: AsyncIterable<Uint8Array>;
}

/**
 * Cuts the body into parts of the schedule's sizes (the last may be smaller) and
 * uploads them, at most `concurrency` at a time and at most partSize x concurrency
 * bytes (one part at least), appending each to `state.parts`.
 * Returns the total size. A part that fails after its retries stops the upload: the
 * error is thrown once parts in flight have settled, and the caller aborts.
 */
export async function uploadParts(opts: UploadPartsOptions): Promise<number> {
  const { state, call, schedule } = opts;
  const inFlight = new Set<Promise<void>>();
  const budget = state.partSize * opts.concurrency;
  let inFlightBytes = 0;
  let failure: unknown;
  let nextPart = 1;
  let total = 0;

  const send = (data: Buffer): void => {
    const partNumber = nextPart++;
    if (partNumber > schedule.limits.maxParts) throw schedule.tooLarge();
    inFlightBytes += data.length;
    const upload = payloadSha256(data).then((hash) =>
      call(`upload part ${partNumber}`, (client) =>
        client.send(withPayloadHash(new (s3().UploadPartCommand)({ Bucket: state.bucket, Key: state.s3Key, UploadId: state.uploadId, PartNumber: partNumber, Body: data, ContentLength: data.length }), hash)),
      ),
    ).then(
      (out) => {
        state.parts.push({ partNumber, etag: out.ETag ?? '', size: data.length });
      },
      (err: unknown) => {
        failure ??= err;
      },
    );
    inFlight.add(upload);
    void upload.finally(() => {
      inFlight.delete(upload);
      inFlightBytes -= data.length;
    });
  };
  /** Waits until another part may start: a free slot, and room in the byte budget unless nothing is in flight. */
  const room = async (): Promise<void> => {
    while (inFlight.size >= opts.concurrency || (inFlight.size > 0 && inFlightBytes + schedule.sizeOf(nextPart) > budget)) await Promise.race(inFlight);
  };

  const pending = new ByteQueue();
  const take = async (chunk: Uint8Array): Promise<void> => {
    pending.push(chunk);
    total += chunk.byteLength;
    while (pending.length >= schedule.sizeOf(nextPart) && failure === undefined) {
      send(pending.take(schedule.sizeOf(nextPart)));
      await room();
    }
  };

  try {
    // Shift the head out as it is used, so it is not held for the whole upload.
    for (let chunk = opts.head.shift(); chunk !== undefined; chunk = opts.head.shift()) await take(chunk);
    for await (const chunk of opts.rest) {
      if (failure !== undefined) break;
      await take(chunk);
    }
    if (failure === undefined && (pending.length > 0 || nextPart === 1)) send(pending.take(pending.length));
  } finally {
    await Promise.allSettled(inFlight);
  }
  if (failure !== undefined) throw failure as Error; // always an Error: rejections of S3Call are StorageErrors
  state.parts.sort((a, b) => a.partNumber - b.partNumber);
  return total;
}

/**
 * Completes an upload from its recorded parts; returns the new object's ETag. Ceph RGW
 * answers with an empty ETag, so then the object is HEADed for it.
 */
export async function completeUpload(call: S3Call, state: MultipartState, conditions: { IfNoneMatch?: string; IfMatch?: string }): Promise<string | undefined> {
  const out = await call('complete multipart upload', (client) =>
    client.send(
      new (s3().CompleteMultipartUploadCommand)({
        Bucket: state.bucket,
        Key: state.s3Key,
        UploadId: state.uploadId,
        MultipartUpload: { Parts: state.parts.map((p) => ({ PartNumber: p.partNumber, ETag: p.etag })) },
        ...conditions,
      }),
    ),
  );
  if (out.ETag) return out.ETag;
  const head = await call('read the completed upload', (client) => client.send(new (s3().HeadObjectCommand)({ Bucket: state.bucket, Key: state.s3Key })));
  return head.ETag;
}

/** A part an upload holds, as ListParts tells it (ETag without quotes). */
export interface StoredPart {
  etag: string;
  size: number;
}

/** The parts an upload holds by number (every page of ListParts); undefined when the upload is gone. */
export async function listStoredParts(call: S3Call, bucket: string, s3Key: string, uploadId: string): Promise<Map<number, StoredPart> | undefined> {
  const parts = new Map<number, StoredPart>();
  let marker: string | undefined;
  try {
    for (;;) {
      const out = await call('list stored parts', (c) => c.send(new (s3().ListPartsCommand)({ Bucket: bucket, Key: s3Key, UploadId: uploadId, PartNumberMarker: marker })));
      for (const p of out.Parts ?? []) if (p.PartNumber !== undefined) parts.set(p.PartNumber, { etag: normalizeEtag(p.ETag ?? ''), size: p.Size ?? -1 });
      if (!out.IsTruncated) return parts;
      marker = out.NextPartNumberMarker;
    }
  } catch (err) {
    if (isStorageError(err, 'E_NOT_FOUND')) return undefined;
    throw err;
  }
}

/** Aborts an upload so its parts stop being billed; failures are ignored (gc finds leftovers). */
export async function abortUpload(call: S3Call, state: MultipartState): Promise<void> {
  await call('abort multipart upload', (client) =>
    client.send(new (s3().AbortMultipartUploadCommand)({ Bucket: state.bucket, Key: state.s3Key, UploadId: state.uploadId })),
  ).catch(() => undefined);
}

/**
 * Multipart uploads under `prefix` (below the driver's own prefix) that were started and
 * never completed or aborted, every page of ListMultipartUploads. Keys no Stowage key
 * can address are left out, as listings leave them out.
 */
export async function listIncompleteUploads(call: S3Call, o: ResolvedS3Options, prefix: string): Promise<IncompleteUpload[]> {
  const uploads: IncompleteUpload[] = [];
  let keyMarker: string | undefined;
  let uploadIdMarker: string | undefined;
  for (;;) {
    const out = await call('list incomplete uploads', (client) =>
      client.send(new (s3().ListMultipartUploadsCommand)({ Bucket: o.bucket, Prefix: o.prefix + prefix, KeyMarker: keyMarker, UploadIdMarker: uploadIdMarker })),
    );
    for (const u of out.Uploads ?? []) {
      const key = (u.Key ?? '').slice(o.prefix.length);
      if (u.UploadId && isAddressableKey(key)) uploads.push({ key, uploadId: u.UploadId, initiated: u.Initiated ?? new Date(0) });
    }
    if (!out.IsTruncated) return uploads;
    keyMarker = out.NextKeyMarker;
    uploadIdMarker = out.NextUploadIdMarker;
  }
}
