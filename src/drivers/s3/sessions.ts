/**
 * Upload sessions of the S3 driver (layout and checks in session-state.ts). A write
 * prepends the session's tail to its bytes, uploads every whole part it can make, and
 * keeps the remainder, smaller than a part, in a new tail object; after each part, and
 * at the end, the state is rewritten (then the old tail deleted), so a crash at any
 * instant leaves a state whose parts and tail the bucket holds. Completion uploads the
 * tail as the last part and completes the upload with the record's attributes and the
 * session's SHA-256; a session whose bytes never filled a part is stored with one
 * PutObject instead. One writer per session at a time, in this process and elsewhere
 * (a lease, session-lease.ts). A partial session's upload is made at its sealed key
 * instead of at the key; reading it for a concatenation completes it there first.
 */
import type { Readable } from 'node:stream';
import type { PutBodyChecks } from '../../core/body.js';
import type { DriverPutOptions } from '../../core/contract.js';
import { StorageError, isStorageError } from '../../core/errors.js';
import { normalizeEtag } from '../../core/objects.js';
import { offsetMismatch, sessionBusy, sessionNotFound, type DriverSessionCompleteOptions, type DriverSessionWriteOptions, type SessionBody, type SessionRecord } from '../../core/sessions.js';
import type { ObjectInfo } from '../../core/types.js';
import { copyObject } from './copy.js';
import { conditionError } from './errors.js';
import { toS3Metadata, writtenInfo } from './metadata.js';
import { completeUpload, type S3Call } from './multipart.js';
import type { ResolvedS3Options } from './options.js';
import { equalPartSize } from './part-sizes.js';
import { payloadSha256, withPayloadHash } from './payload.js';
import { s3 } from './sdk.js';
import { mapErrors } from './streams.js';
import { checkSessionState, deleteTails, listSessionStates, readSessionState, sealedState, sessionPartSize, SessionPlace, writeSessionState, type SessionPart, type SessionState } from './session-state.js';
import { SessionLease } from './session-lease.js';
import { checkUserKey } from './upload-state.js';

/** What the driver gives its sessions. */
export interface SessionContext {
  call: S3Call;
  options: ResolvedS3Options;
  /** The conditions to send with a completion (checked by HEAD where the service does not enforce them). */
  conditions: (key: string, opts: DriverPutOptions) => Promise<{ IfNoneMatch?: string; IfMatch?: string }>;
  /** Stores a small object with the driver's own put (one PutObject, conditions enforced). */
  put: (key: string, data: Buffer, opts: DriverPutOptions, checks: PutBodyChecks) => Promise<ObjectInfo>;
}

/** The sessions of one S3 driver. */
export class S3Sessions {
  readonly #ctx: SessionContext;
  /** Sessions this process is writing or completing now. */
  readonly #writing = new Set<string>();

  constructor(ctx: SessionContext) {
    this.#ctx = ctx;
  }

  /** Writes the state of a new session; the multipart upload is made with its first whole part. */
  async create(record: SessionRecord): Promise<SessionRecord> {
    checkUserKey(record.key);
    const o = this.#ctx.options;
    // A known size gets equal parts that fit; an unknown one grows its parts where the provider allows.
    const known = record.size !== undefined;
    const state: SessionState = {
      version: 1, record, partSize: known ? equalPartSize(record.size ?? 0, o.partSize, o.maxParts) : o.partSize, equalParts: known || o.profile.equalParts, maxParts: o.maxParts, parts: [],
    };
    await writeSessionState(this.#ctx.call, o, new SessionPlace(o, record.id), state);
    return record;
  }

  /** The committed record, its offset checked against the parts and tail the bucket holds. */
  async get(id: string): Promise<SessionRecord> {
    return (await this.#load(id)).state.record;
  }

  /** Appends the body at the committed offset (see the file's comment). */
  async write(id: string, body: SessionBody, opts: DriverSessionWriteOptions): Promise<SessionRecord> {
    return this.#asWriter(id, async () => {
      const { place, state } = await this.#load(id);
      const { call, options: o } = this.#ctx;
      if (state.record.offset !== opts.offset) throw offsetMismatch(id, opts.offset, state.record.offset);
      const startOffset = state.record.offset;
      const oldTail = state.tail;
      let staleTails = oldTail !== undefined;
      delete state.completing; // a completion a condition refused: the session goes on
      let pending: Buffer[] = oldTail ? [await this.#readTail(place, oldTail.name)] : [];
      let pendingBytes = oldTail?.size ?? 0;
      const uncommitted: SessionPart[] = [];
      const commit = async (checkpoint: { offset: number; hashState: string }, tail: SessionState['tail']) => {
        state.parts.push(...uncommitted.splice(0));
        state.tail = tail;
        state.record = { ...state.record, ...checkpoint, size: opts.size ?? state.record.size };
        await writeSessionState(call, o, place, state);
        if (staleTails && oldTail?.name !== tail?.name) {
          await deleteTails(call, o, place, { keep: tail?.name });
          staleTails = false;
        }
      };
      for (let done = false; !done; ) {
        const partNumber = state.parts.length + uncommitted.length + 1;
        const partSize = sessionPartSize(state, partNumber);
        const chunk = await body.next(partSize - pendingBytes, true);
        done = chunk.done;
        if (chunk.data.length > 0) {
          pending.push(chunk.data);
          pendingBytes += chunk.data.length;
        }
        if (pendingBytes < partSize) continue; // only once the body ended: the rest becomes the tail
        if (partNumber > state.maxParts) throw new StorageError('E_TOO_LARGE', `upload session ${id} would need more than ${state.maxParts} parts`, { details: { maxParts: state.maxParts } });
        const data = Buffer.concat(pending, pendingBytes);
        pending = [];
        pendingBytes = 0;
        uncommitted.push(await this.#uploadPart(place, state, partNumber, data, opts.signal));
        const checkpoint = body.checkpoint();
        if (checkpoint) await commit(checkpoint, undefined);
      }
      const checkpoint = body.checkpoint();
      if (checkpoint && (checkpoint.offset !== startOffset || uncommitted.length > 0)) {
        let tail: SessionState['tail'];
        if (pendingBytes > 0) {
          tail = { name: `tail-${checkpoint.offset}`, size: pendingBytes };
          const data = Buffer.concat(pending, pendingBytes);
          await call(`store the tail of upload session ${id}`, (c) => c.send(new (s3().PutObjectCommand)({ Bucket: o.bucket, Key: place.tailKey(tail?.name ?? ''), Body: data, ContentLength: data.length })));
        }
        await commit(checkpoint, tail);
      } else if (opts.size !== undefined && opts.size !== state.record.size) {
        state.record = { ...state.record, size: opts.size };
        await writeSessionState(call, o, place, state);
      }
      if (body.failure) throw body.failure;
      return state.record;
    });
  }

  /**
   * Stores the session's bytes at its key and removes the session. A condition that
   * fails leaves the session as it was (the tail sent as a part is sent again next time).
   */
  async complete(id: string, opts: DriverSessionCompleteOptions): Promise<ObjectInfo> {
    return this.#asWriter(id, async () => {
      const { place, state } = await this.#load(id);
      const { call, options: o } = this.#ctx;
      const { key, contentType, metadata, cacheControl, contentDisposition, offset } = state.record;
      const putOpts: DriverPutOptions = { contentType, metadata, cacheControl, contentDisposition, ifNoneMatch: opts.ifNoneMatch, ifMatch: opts.ifMatch };
      const tail = state.tail ? await this.#readTail(place, state.tail.name) : Buffer.alloc(0);
      if (state.parts.length === 0) {
        const info = await this.#ctx.put(key, tail, putOpts, { sha256: opts.sha256 });
        await this.#remove(place, state);
        return info;
      }
      const conditions = await this.#ctx.conditions(key, putOpts);
      const parts = [...state.parts];
      if (tail.length > 0) parts.push(await this.#uploadPart(place, state, parts.length + 1, tail));
      await writeSessionState(call, o, place, { ...state, completing: true });
      const s3Key = place.uploadKey(state.record);
      let etag = await completeUpload(call, { bucket: o.bucket, s3Key, uploadId: state.uploadId ?? '', partSize: state.partSize, parts }, conditions).catch(async (err: unknown) => {
        if (!isStorageError(err, 'E_NOT_FOUND')) await writeSessionState(call, o, place, state).catch(() => undefined); // not completing after all
        throw conditionError(err, key, putOpts);
      });
      // The upload was made with the SHA-256 only when it was expected from the start.
      if (state.record.sha256 !== opts.sha256) {
        etag = await copyObject(call, o, { from: s3Key, to: s3Key, size: offset, ifMatch: etag, replace: { contentType, cacheControl, contentDisposition, metadata: toS3Metadata(metadata, opts.sha256) } });
      }
      await this.#remove(place, { ...state, uploadId: undefined }); // completed: nothing to abort
      return writtenInfo(key, { ...putOpts, size: offset, sha256: opts.sha256, etag });
    });
  }

  /** Aborts the upload, deletes the tails, then the state; a missing session resolves. */
  async abort(id: string): Promise<void> {
    const o = this.#ctx.options;
    const place = new SessionPlace(o, id);
    const state = await readSessionState(this.#ctx.call, o, place).catch((err: unknown) => {
      if (isStorageError(err, 'E_NOT_FOUND')) return undefined;
      if (isStorageError(err, 'E_UNAVAILABLE')) return { unreadable: true } as const; // removed all the same
      throw err;
    });
    if (state === undefined) return deleteTails(this.#ctx.call, o, place, { all: true });
    await this.#remove(place, 'unreadable' in state ? undefined : state);
  }

  /**
   * Streams a finished partial session's bytes from its sealed object, sealing it first
   * (once, as its writer): the tail becomes the last part and the upload completes at the
   * sealed key (a session that never filled a part is one PutObject there), then the state
   * says `sealed` and the tails go. A crash in between leaves a state `#load` recognizes.
   */
  async read(id: string, signal?: AbortSignal): Promise<Readable> {
    const { call, options: o } = this.#ctx;
    const place = new SessionPlace(o, id);
    if (!(await this.#load(id)).state.sealed) await this.#asWriter(id, () => this.#seal(place));
    const out = await call(`read upload session ${id}`, (c) => c.send(new (s3().GetObjectCommand)({ Bucket: o.bucket, Key: place.sealedKey }), { abortSignal: signal })).catch((err: unknown) => {
      throw isStorageError(err, 'E_NOT_FOUND') ? sessionNotFound(id, err) : err;
    });
    return mapErrors(out.Body as Readable, `read upload session ${id}`, id);
  }

  async #seal(place: SessionPlace): Promise<void> {
    const { call, options: o } = this.#ctx;
    const { state } = await this.#load(place.id);
    if (state.sealed) return;
    if (!state.record.partial) throw new StorageError('E_INVALID_ARGUMENT', `upload session ${place.id} is not partial: complete it instead of reading it`);
    const tail = state.tail ? await this.#readTail(place, state.tail.name) : Buffer.alloc(0);
    if (state.parts.length === 0) {
      const hash = await payloadSha256(tail);
      await call(`seal upload session ${place.id}`, (c) => c.send(withPayloadHash(new (s3().PutObjectCommand)({ Bucket: o.bucket, Key: place.sealedKey, Body: tail, ContentLength: tail.length }), hash)));
    } else {
      const parts = [...state.parts];
      if (tail.length > 0) parts.push(await this.#uploadPart(place, state, parts.length + 1, tail));
      await writeSessionState(call, o, place, { ...state, completing: true });
      await completeUpload(call, { bucket: o.bucket, s3Key: place.sealedKey, uploadId: state.uploadId ?? '', partSize: state.partSize, parts }, {});
    }
    await writeSessionState(call, o, place, sealedState(state));
    await deleteTails(call, o, place);
  }

  /** Every session whose key starts with `prefix`. */
  async list(prefix: string): Promise<SessionRecord[]> {
    return (await listSessionStates(this.#ctx.call, this.#ctx.options)).map((s) => s.record).filter((r) => r.key.startsWith(prefix));
  }

  /** The multipart uploads sessions hold, which the clean-up of abandoned uploads must leave alone. */
  async uploadIds(): Promise<Set<string>> {
    return new Set((await listSessionStates(this.#ctx.call, this.#ctx.options)).flatMap((s) => (s.uploadId ? [s.uploadId] : [])));
  }

  /** The state, checked; a session found completed (only its removal was cut short) is removed and E_NOT_FOUND. */
  async #load(id: string): Promise<{ place: SessionPlace; state: SessionState }> {
    const place = new SessionPlace(this.#ctx.options, id);
    const state = await readSessionState(this.#ctx.call, this.#ctx.options, place);
    const found = await checkSessionState(this.#ctx.call, this.#ctx.options, place, state);
    if (found === 'completed') {
      await this.#remove(place, { ...state, uploadId: undefined });
      throw sessionNotFound(id);
    }
    if (found === 'sealed') {
      // Sealed, and only the state's rewrite was cut short.
      const sealed = sealedState(state);
      await writeSessionState(this.#ctx.call, this.#ctx.options, place, sealed);
      return { place, state: sealed };
    }
    return { place, state };
  }

  async #readTail(place: SessionPlace, name: string): Promise<Buffer> {
    const o = this.#ctx.options;
    const out = await this.#ctx.call(`read the tail of upload session ${place.id}`, (c) => c.send(new (s3().GetObjectCommand)({ Bucket: o.bucket, Key: place.tailKey(name) })));
    return Buffer.from((await out.Body?.transformToByteArray()) ?? new Uint8Array());
  }

  /** Uploads one part, making the multipart upload first (and recording it at once, so it is never leaked). */
  async #uploadPart(place: SessionPlace, state: SessionState, partNumber: number, data: Buffer, signal?: AbortSignal): Promise<SessionPart> {
    const { call, options: o } = this.#ctx;
    const r = state.record;
    const s3Key = place.uploadKey(r);
    if (state.uploadId === undefined) {
      const created = await call(`start the upload of session ${place.id}`, (c) =>
        c.send(new (s3().CreateMultipartUploadCommand)({ Bucket: o.bucket, Key: s3Key, ContentType: r.contentType, CacheControl: r.cacheControl, ContentDisposition: r.contentDisposition, Metadata: toS3Metadata(r.metadata, r.sha256) })),
      );
      state.uploadId = created.UploadId ?? '';
      await writeSessionState(call, o, place, state);
    }
    const hash = await payloadSha256(data);
    const uploadId = state.uploadId;
    const out = await call(`upload part ${partNumber} of session ${place.id}`, (c) =>
      c.send(withPayloadHash(new (s3().UploadPartCommand)({ Bucket: o.bucket, Key: s3Key, UploadId: uploadId, PartNumber: partNumber, Body: data, ContentLength: data.length }), hash), { abortSignal: signal }),
    );
    return { partNumber, size: data.length, etag: normalizeEtag(out.ETag ?? '') };
  }

  /** Aborts the session's upload (when `state` names one), deletes its tails, then its state. */
  async #remove(place: SessionPlace, state: SessionState | undefined): Promise<void> {
    const { call, options: o } = this.#ctx;
    if (state?.uploadId) {
      const uploadId = state.uploadId;
      await call(`abort the upload of session ${place.id}`, (c) => c.send(new (s3().AbortMultipartUploadCommand)({ Bucket: o.bucket, Key: place.uploadKey(state.record), UploadId: uploadId }))).catch((err: unknown) => {
        if (!isStorageError(err, 'E_NOT_FOUND')) throw err;
      });
    }
    await deleteTails(call, o, place, { all: true });
    await call(`delete upload session ${place.id}`, (c) => c.send(new (s3().DeleteObjectCommand)({ Bucket: o.bucket, Key: place.stateKey })));
  }

  /**
   * Runs `fn` as the session's only writer: at once refused for a second writer in this
   * process, and through the session's lease (session-lease.ts) for one elsewhere.
   */
  async #asWriter<T>(id: string, fn: () => Promise<T>): Promise<T> {
    if (this.#writing.has(id)) {
      throw sessionBusy(id);
    }
    this.#writing.add(id);
    try {
      const lease = await SessionLease.take(this.#ctx.call, this.#ctx.options, new SessionPlace(this.#ctx.options, id));
      try {
        return await fn();
      } finally {
        await lease.release();
      }
    } finally {
      this.#writing.delete(id);
    }
  }
}
