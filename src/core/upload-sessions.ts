/**
 * Resumable upload sessions, the public side (`storage.sessions`): create one for a key,
 * write its bytes in pieces at their offsets (from any process, after any crash), ask
 * for its offset, complete it into the object or abort it. The state lives in the
 * backend (see the drivers), so a session outlives the process that started it; this
 * class validates, keeps expiry, and checks the whole object's SHA-256 before anything
 * is stored. The tus endpoint maps onto it one to one (creation with a deferred length,
 * PATCH at an offset, HEAD for the offset, per-chunk checksums).
 */
import { randomBytes } from 'node:crypto';
import type { Body, ObjectAttributes, ObjectInfo } from './types.js';
import { StorageError } from './errors.js';
import { normalizeKey, normalizePrefix } from './keys.js';
import { driverPutOptions, invalid, normalizeSha256, validateMaxSize } from './options.js';
import { offsetMismatch, resumableSha256, SessionBody, sessionNotFound, type SessionRecord } from './sessions.js';
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
}

/** A session as callers see it: its record without the hash state. */
export type UploadSession = Omit<SessionRecord, 'hashState'>;

/** Options of `sessions.write`. */
export interface SessionWriteOptions {
  /** Declares the total size (for a session created without one); it cannot change once set. */
  size?: number;
  /** The SHA-256 of this write's bytes alone: on mismatch nothing of the write counts (E_CHECKSUM_MISMATCH). */
  sha256?: string;
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

/** Runs a session operation with Storage's error context and close tracking. */
export type SessionRunner = <T>(operation: string, key: string | undefined, fn: () => Promise<T>, signal?: AbortSignal) => Promise<T>;

const SESSION_ID = /^[0-9a-f]{32}$/;

/** The sessions of one storage: `storage.sessions`. */
export class UploadSessions {
  readonly #driver: Driver;
  readonly #run: SessionRunner;

  constructor(driver: Driver, run: SessionRunner) {
    this.#driver = driver;
    this.#run = run;
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
      const conditions = driverPutOptions(record.key, opts);
      if (record.size !== undefined && record.offset !== record.size) {
        throw invalid(`session ${id} holds ${record.offset} of its ${record.size} bytes; write the rest before completing`);
      }
      const sha256 = (await resumableSha256(record.hashState)).digest();
      if (record.sha256 !== undefined && record.sha256 !== sha256) {
        await this.#driver.abortSession(id);
        throw new StorageError('E_CHECKSUM_MISMATCH', `session ${id}'s bytes have SHA-256 ${sha256}, not the expected ${record.sha256}; nothing was stored and the session was aborted`, {
          key: record.key,
          details: { expected: record.sha256, actual: sha256 },
        });
      }
      return this.#driver.completeSession(id, { sha256, ifNoneMatch: conditions.ifNoneMatch, ifMatch: conditions.ifMatch });
    });
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
   * The lifecycle clean-up: aborts every session that expired before `before` (default
   * now), freeing its bytes, and returns them. With `dryRun` it only returns them.
   * `stowage gc sessions` runs it.
   */
  async cleanup(opts: { before?: Date; dryRun?: boolean } = {}): Promise<{ removed: number; sessions: UploadSession[] }> {
    return this.#run('cleanupSessions', undefined, async () => {
      if (!this.#driver.capabilities.sessions) return { removed: 0, sessions: [] };
      const before = (opts.before ?? new Date()).getTime();
      const expired = (await this.#driver.listSessions('')).filter((r) => r.expiresAt.getTime() <= before);
      if (!opts.dryRun) for (const record of expired) await this.#driver.abortSession(record.id);
      return { removed: opts.dryRun ? 0 : expired.length, sessions: expired.map(view) };
    });
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

function checkId(id: unknown): string {
  if (typeof id !== 'string' || !SESSION_ID.test(id)) throw invalid('a session id is 32 lowercase hexadecimal characters');
  return id;
}

/** A record as callers see it: without the hash state, and with its own copies. */
function view(record: SessionRecord): UploadSession {
  const { hashState: _hashState, ...session } = record;
  return { ...session, metadata: { ...record.metadata }, createdAt: new Date(record.createdAt), expiresAt: new Date(record.expiresAt) };
}
