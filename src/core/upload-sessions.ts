/**
 * Resumable upload sessions, the public side (`storage.sessions`): create one for a key,
 * write its bytes in pieces at their offsets (from any process, after any crash), ask
 * for its offset, complete it into the object or abort it. The state lives in the
 * backend (see the drivers), so a session outlives the process that started it; this
 * class validates, keeps expiry, and checks the whole object's SHA-256 before anything
 * is stored. The tus endpoint maps onto it one to one (creation with a deferred length,
 * PATCH at an offset, HEAD for the offset, per-chunk checksums).
 */
import { createHash, randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { PutBody } from './body.js';
import { mapConcurrently } from './concurrency.js';
import type { Body, ObjectAttributes, ObjectInfo, PutOptions, WriteResult } from './types.js';
import { StorageError } from './errors.js';
import { normalizeKey, normalizePrefix } from './keys.js';
import { bodyChecks, driverPutOptions, invalid, normalizeSha256, validateMaxSize } from './options.js';
import { reportDone } from './progress.js';
import { offsetMismatch, resumableSha256, SessionBody, sessionNotFound, WRITE_CHECKSUM_ALGORITHMS, WRITE_CHECKSUM_BYTES, type SessionRecord, type WriteChecksum } from './sessions.js';
import type { Driver } from './contract.js';

/** How long a session lives unless told otherwise: 24 hours. */
export const DEFAULT_SESSION_EXPIRES_IN = 24 * 3600;
/** The longest a session may live: 30 days. */
export const MAX_SESSION_EXPIRES_IN = 30 * 24 * 3600;

/** Options of `sessions.create`: the object's attributes, plus what the upload must be. */
export interface CreateSessionOptions extends Partial<ObjectAttributes> {
  /** The total size, when known; else declared by a later write (`size`) or fixed at completion. */
  size?: number;
  /** The SHA-256 the whole object must have: a session whose bytes differ is never completed. */
  sha256?: string;
  /** Seconds until the session expires (default 24 h, at most 30 days). */
  expiresIn?: number;
  /**
   * A part of a later {@link UploadSessions.concat} (tus's `Upload-Concat: partial`): it
   * is never completed on its own, and `key` only names it (for `list`). Default false.
   */
  partial?: boolean;
}

/** A session as callers see it: its record without the hash state. */
export type UploadSession = Omit<SessionRecord, 'hashState'>;

/** Options of `sessions.write`. */
export interface SessionWriteOptions {
  /** Declares the total size (for a session created without one); it cannot change once set. */
  size?: number;
  /** The SHA-256 of this write's bytes alone: on mismatch nothing of the write counts (E_CHECKSUM_MISMATCH). */
  sha256?: string;
  /** The same by another algorithm (sha1, sha512, md5; or sha256), with the digest's bytes. */
  checksum?: WriteChecksum;
  /** Cancels the write; bytes stored before the cancel stay in the session. */
  signal?: AbortSignal;
}

/** Options of `sessions.complete`. */
export interface CompleteSessionOptions {
  /** `'*'`: create only (E_ALREADY_EXISTS if the key exists; the session stays). */
  ifNoneMatch?: '*';
  /** Replace only this version (E_PRECONDITION_FAILED; the session stays). */
  ifMatch?: string;
}

/** The most sessions one `concat` joins. */
export const MAX_CONCAT_SESSIONS = 1000;
/** Sessions checked at once before a concatenation. */
const CHECK_CONCURRENCY = 8;

/** Runs a session operation with Storage's error context and close tracking. */
export type SessionRunner = <T>(operation: string, key: string | undefined, fn: () => Promise<T>, signal?: AbortSignal) => Promise<T>;

const SESSION_ID = /^[0-9a-f]{32}$/;

/** The sessions of one storage: `storage.sessions`. `Written` is what a write resolves (see `Storage`). */
export class UploadSessions<Written extends WriteResult = ObjectInfo> {
  readonly #driver: Driver;
  readonly #run: SessionRunner;
  /** Told of each object a session stored (Storage starts its eager image variants). */
  readonly #onStored: (info: WriteResult) => void;

  constructor(driver: Driver, run: SessionRunner, onStored: (info: WriteResult) => void = () => undefined) {
    this.#driver = driver;
    this.#run = run;
    this.#onStored = onStored;
  }

  /**
   * Starts a session for `key` with the object's attributes (validated as `put`
   * validates them) and returns it at offset 0. E_UNSUPPORTED on a backend without
   * sessions (see `capabilities.sessions`).
   */
  async create(key: string, opts: CreateSessionOptions = {}): Promise<UploadSession> {
    return this.#run('createSession', typeof key === 'string' ? key : undefined, async () => {
      this.#supported();
      const k = normalizeKey(key);
      const { contentType, metadata, cacheControl, contentDisposition } = driverPutOptions(k, opts);
      const size = this.#size(opts.size, 'size');
      if (opts.partial !== undefined && typeof opts.partial !== 'boolean') throw invalid('partial must be true or false');
      const expiresIn = opts.expiresIn ?? DEFAULT_SESSION_EXPIRES_IN;
      if (!Number.isSafeInteger(expiresIn) || expiresIn < 1 || expiresIn > MAX_SESSION_EXPIRES_IN) {
        throw invalid(`expiresIn must be a whole number of seconds from 1 to ${MAX_SESSION_EXPIRES_IN}`);
      }
      const now = new Date();
      const record: SessionRecord = {
        id: randomBytes(16).toString('hex'),
        key: k,
        offset: 0,
        size,
        sha256: normalizeSha256(opts.sha256),
        contentType,
        metadata,
        cacheControl,
        contentDisposition,
        createdAt: now,
        expiresAt: new Date(now.getTime() + expiresIn * 1000),
        hashState: (await resumableSha256()).save(),
        ...(opts.partial ? { partial: true } : {}),
      };
      return view(await this.#driver.createSession(record));
    });
  }

  /** The session with its current offset. E_NOT_FOUND when unknown, completed, aborted or expired. */
  async get(id: string): Promise<UploadSession> {
    return this.#run('getSession', undefined, async () => view(await this.#live(id)));
  }

  /**
   * Appends `body` at `offset`, which must be the session's offset (else E_OFFSET_MISMATCH,
   * with the session's in `details.offset`, and nothing written). Resolves the session
   * after the write. When the body fails midway (the client went away, a cancel, more
   * bytes than the declared size), the bytes received before the failure are kept and the
   * write rejects: `get` gives the offset to resume from. With `opts.sha256` (a checksum
   * of this write) nothing of the write counts unless all of it arrived and matched.
   */
  async write(id: string, offset: number, body: Body, opts: SessionWriteOptions = {}): Promise<UploadSession> {
    return this.#run('writeSession', undefined, async () => {
      const record = await this.#live(id);
      if (!Number.isSafeInteger(offset) || offset < 0) throw invalid('offset must be a whole number of bytes >= 0');
      if (offset !== record.offset) throw offsetMismatch(id, offset, record.offset);
      if (record.partial && record.offset === record.size) throw invalid(`partial session ${id} holds all its ${record.size} bytes: concatenate it`);
      const declared = this.#size(opts.size, 'size');
      if (declared !== undefined && record.size !== undefined && declared !== record.size) {
        throw invalid(`the session's size is already ${record.size}; it cannot change to ${declared}`);
      }
      if (declared !== undefined && declared < record.offset) throw invalid(`size ${declared} is less than the ${record.offset} bytes already stored`);
      const total = declared ?? record.size ?? this.#driver.capabilities.maxObjectSize;
      const session = await SessionBody.open(body, {
        from: { offset: record.offset, hashState: record.hashState },
        limit: total === undefined ? undefined : total - record.offset,
        sha256: normalizeSha256(opts.sha256),
        checksum: checkedChecksum(opts.checksum),
        signal: opts.signal,
      });
      return view(await this.#driver.writeSession(id, session, { offset, size: declared, signal: opts.signal }));
    }, opts.signal);
  }

  /**
   * Stores the session's bytes as its object and ends the session. The session must hold
   * its declared size (else E_INVALID_ARGUMENT, and it stays); without one, its size is
   * what it holds. When the bytes do not have the expected SHA-256 nothing is stored and
   * the session is aborted (E_CHECKSUM_MISMATCH): bytes once stored never change.
   */
  async complete(id: string, opts: CompleteSessionOptions = {}): Promise<ObjectInfo> {
    return this.#run('completeSession', undefined, async () => {
      const record = await this.#live(id);
      if (record.partial) throw invalid(`session ${id} is partial: it is stored only by sessions.concat`);
      const conditions = driverPutOptions(record.key, opts);
      if (record.size !== undefined && record.offset !== record.size) {
        throw invalid(`session ${id} holds ${record.offset} of its ${record.size} bytes; write the rest before completing`);
      }
      const sha256 = await this.#checkedDigest(record);
      const info = await this.#driver.completeSession(id, { sha256, ifNoneMatch: conditions.ifNoneMatch, ifMatch: conditions.ifMatch });
      this.#onStored(info);
      return info;
    });
  }

  /**
   * Stores the bytes of finished partial sessions, in the order of `ids`, as one object
   * at `key` with the attributes of `opts` (tus's `Upload-Concat: final`), then ends those
   * sessions. Each must be partial and hold its declared size, and appear once (else
   * E_INVALID_ARGUMENT and nothing changes); one whose bytes lack its expected SHA-256 is
   * aborted (E_CHECKSUM_MISMATCH). The bytes are read back from the backend as they are
   * stored, each session's checked against the SHA-256 its writes computed, and the whole
   * object's SHA-256 computed (and checked against `opts.sha256`) as `put` does. When the
   * store fails (a condition, the backend, a read) nothing is stored and the sessions stay
   * for a retry. It costs one read of every byte (from S3 a download, after each
   * session's upload is completed under `.stowage/`). Sessions whose removal after the
   * store failed expire, and `cleanup` removes them.
   */
  async concat(key: string, ids: readonly string[], opts: PutOptions = {}): Promise<Written> {
    return this.#run('concatSessions', typeof key === 'string' ? key : undefined, async () => {
      this.#supported();
      const k = normalizeKey(key);
      const putOpts = driverPutOptions(k, opts);
      const checks = bodyChecks(opts);
      const given: unknown = ids;
      if (!Array.isArray(given) || given.length === 0 || given.length > MAX_CONCAT_SESSIONS) throw invalid(`ids must be an array of 1 to ${MAX_CONCAT_SESSIONS} session ids`);
      const checked = (given as unknown[]).map(checkId);
      if (new Set(checked).size !== checked.length) throw invalid('ids names a session more than once');
      const records = await mapConcurrently(checked, CHECK_CONCURRENCY, (id) => this.#live(id));
      const digests: string[] = [];
      for (const r of records) {
        if (!r.partial) throw invalid(`session ${r.id} is not partial: complete it instead`);
        if (r.size === undefined || r.offset !== r.size) throw invalid(`partial session ${r.id} holds ${r.offset} of its ${r.size ?? 'undeclared'} bytes; write the rest before concatenating it`);
        digests.push(await this.#checkedDigest(r));
      }
      const size = records.reduce((sum, r) => sum + r.offset, 0);
      const max = this.#driver.capabilities.maxObjectSize;
      if (max !== undefined && size > max) throw new StorageError('E_TOO_LARGE', `the sessions hold ${size} bytes, over the backend's limit of ${max}`, { details: { maxSize: max } });
      const body = Readable.from(readBack(this.#driver, records, digests, opts.signal));
      const info = await this.#driver.put(k, new PutBody(body, { ...checks, size }), { ...putOpts, sessions: checked }).finally(() => body.destroy());
      for (const r of records) await this.#driver.abortSession(r.id).catch(() => undefined);
      reportDone(opts.onProgress, info.size);
      this.#onStored(info);
      return info as Written;
    }, opts.signal);
  }

    /** Ends the session and frees what it stored. An unknown (or already ended) session resolves. */
  async abort(id: string): Promise<void> {
    return this.#run('abortSession', undefined, async () => {
      this.#supported();
      await this.#driver.abortSession(checkId(id));
    });
  }

  /** The sessions whose key starts with `prefix` that have not expired, oldest first. */
  async list(opts: { prefix?: string } = {}): Promise<UploadSession[]> {
    return this.#run('listSessions', undefined, async () => {
      const prefix = normalizePrefix(opts.prefix);
      if (!this.#driver.capabilities.sessions) return [];
      const now = Date.now();
      const live = (await this.#driver.listSessions(prefix)).filter((r) => r.expiresAt.getTime() > now);
      return live.sort((a, b) => a.createdAt.getTime() - b.createdAt.getTime()).map(view);
    });
  }

  /**
   * The clean-up: aborts every session (whose key starts with `prefix`, default all) that
   * expired before `before` (default now), freeing its bytes, and returns them. With
   * `dryRun` it only returns them. The lifecycle rules (`abortIncompleteAfter`) use it.
   */
  async cleanup(opts: { before?: Date; dryRun?: boolean; prefix?: string } = {}): Promise<{ removed: number; sessions: UploadSession[] }> {
    return this.#run('cleanupSessions', undefined, async () => {
      const prefix = normalizePrefix(opts.prefix);
      if (!this.#driver.capabilities.sessions) return { removed: 0, sessions: [] };
      const before = (opts.before ?? new Date()).getTime();
      const expired = (await this.#driver.listSessions(prefix)).filter((r) => r.expiresAt.getTime() <= before);
      if (!opts.dryRun) for (const record of expired) await this.#driver.abortSession(record.id);
      return { removed: opts.dryRun ? 0 : expired.length, sessions: expired.map(view) };
    });
  }

  /** The SHA-256 of the session's bytes; a session expecting another is aborted (E_CHECKSUM_MISMATCH). */
  async #checkedDigest(record: SessionRecord): Promise<string> {
    const sha256 = (await resumableSha256(record.hashState)).digest();
    if (record.sha256 !== undefined && record.sha256 !== sha256) {
      await this.#driver.abortSession(record.id);
      throw new StorageError('E_CHECKSUM_MISMATCH', `session ${record.id}'s bytes have SHA-256 ${sha256}, not the expected ${record.sha256}; nothing was stored and the session was aborted`, {
        key: record.key,
        details: { expected: record.sha256, actual: sha256 },
      });
    }
    return sha256;
  }

    /** The session's record, refusing ids that cannot be one and sessions that expired. */
  async #live(id: string): Promise<SessionRecord> {
    this.#supported();
    const record = await this.#driver.getSession(checkId(id));
    if (record.expiresAt.getTime() <= Date.now()) throw sessionNotFound(id);
    return record;
  }

  #supported(): void {
    if (!this.#driver.capabilities.sessions) {
      throw new StorageError('E_UNSUPPORTED', `the ${this.#driver.name} backend has no upload sessions (capabilities.sessions is false)`);
    }
  }

  #size(size: unknown, option: string): number | undefined {
    const valid = validateMaxSize(size, option);
    const max = this.#driver.capabilities.maxObjectSize;
    if (valid !== undefined && max !== undefined && valid > max) {
      throw new StorageError('E_TOO_LARGE', `${option} ${valid} is over the backend's limit of ${max} bytes`, { details: { maxSize: max } });
    }
    return valid;
  }
}

/**
 * The sessions' bytes in order, read from the driver, each session's checked against the
 * size and SHA-256 its writes recorded before the next is read: a backend that gives back
 * other bytes fails the stream, so the store it feeds stores nothing.
 */
async function* readBack(driver: Driver, records: SessionRecord[], digests: string[], signal?: AbortSignal): AsyncGenerator<Buffer> {
  for (const [i, record] of records.entries()) {
    const stream = await driver.readSession(record.id, { signal });
    const hash = createHash('sha256');
    let size = 0;
    try {
      for await (const chunk of stream as AsyncIterable<Buffer>) {
        hash.update(chunk);
        size += chunk.length;
        yield chunk;
      }
    } finally {
      stream.destroy();
    }
    const sha256 = hash.digest('hex');
    if (size !== record.offset || sha256 !== digests[i]) {
      throw new StorageError('E_UNAVAILABLE', `session ${record.id} read back as ${size} bytes with SHA-256 ${sha256}, not the ${record.offset} bytes with ${digests[i]} it stored`, { retryable: false });
    }
  }
}

/** A write checksum, checked: a known algorithm and a digest of its length. */
function checkedChecksum(checksum: WriteChecksum | undefined): WriteChecksum | undefined {
  if (checksum === undefined) return undefined;
  const { algorithm, digest } = checksum;
  if (!(WRITE_CHECKSUM_ALGORITHMS as readonly string[]).includes(algorithm)) throw invalid(`checksum.algorithm must be one of ${WRITE_CHECKSUM_ALGORITHMS.join(', ')}`);
  if (!Buffer.isBuffer(digest) || digest.length !== WRITE_CHECKSUM_BYTES[algorithm]) throw invalid(`checksum.digest must be the ${WRITE_CHECKSUM_BYTES[algorithm]} bytes of a ${algorithm} digest`);
  return checksum;
}

function checkId(id: unknown): string {
  if (typeof id !== 'string' || !SESSION_ID.test(id)) throw invalid('a session id is 32 lowercase hexadecimal characters');
  return id;
}

/** A record as callers see it: without the hash state, and with its own copies. */
function view(record: SessionRecord): UploadSession {
  const { hashState: _hashState, ...session } = record;
  return { ...session, metadata: { ...record.metadata }, createdAt: new Date(record.createdAt), expiresAt: new Date(record.expiresAt) };
}
