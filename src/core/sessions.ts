/**
 * Upload sessions as drivers see them: the record a driver keeps for each session in its
 * backend, and {@link SessionBody}, the bytes of one write with the session's running
 * SHA-256, which the driver persists with the offset it has made durable.
 *
 * The SHA-256 of the whole object must survive the process that received its first bytes,
 * and Node's native hash cannot be saved; the session keeps a WebAssembly SHA-256 whose
 * state (about 116 bytes) is saved with the offset at each commit. It hashes about 300 MB/s
 * per core, against about 1.7 GB/s natively: cheaper than reading back what is stored
 * (which S3 cannot do before the upload completes), and far above what one upload over a
 * network brings.
 */
import { createHash, timingSafeEqual, type Hash } from 'node:crypto';
import { StorageError } from './errors.js';
import { PutBody } from './body.js';
import { ByteQueue } from './byte-queue.js';
import type { Body, ObjectAttributes } from './types.js';
import type { IHasher } from 'hash-wasm';

/** What a driver keeps for a session, in the backend itself, so any process can resume it. */
export interface SessionRecord extends ObjectAttributes {
  /** 32 lowercase hex characters, chosen by Storage. */
  id: string;
  /** The normalized key the object will be stored at. */
  key: string;
  /** Bytes durably stored so far: the next write starts here. */
  offset: number;
  /** The object's total size, once known (at creation, or declared by a later write). */
  size?: number;
  /** The SHA-256 the whole object must have; a session whose bytes differ never completes. */
  sha256?: string;
  createdAt: Date;
  /** After this the session is gone for every operation, and the clean-up removes it. */
  expiresAt: Date;
  /** The saved SHA-256 state of bytes [0, offset) (opaque to drivers: store it as it is). */
  hashState: string;
  /**
   * A part of a later concatenation (tus's `Upload-Concat: partial`): never completed on
   * its own; once it holds its size, `readSession` gives its bytes and `sessions.concat`
   * stores them with others' at a key of its own. Its `key` only names it (for listing).
   */
  partial?: boolean;
}

/** What a driver's `writeSession` receives besides the bytes. */
export interface DriverSessionWriteOptions {
  /** Where the caller says this write starts; a driver refuses any other than the record's offset (E_OFFSET_MISMATCH). */
  offset: number;
  /** Declares the total size (deferred length); the driver stores it with the record. */
  size?: number;
  signal?: AbortSignal;
}

/** What a driver's `completeSession` receives, once Storage has checked the bytes. */
export interface DriverSessionCompleteOptions {
  /** The SHA-256 of the whole object, as computed across every write, to store with it. */
  sha256: string;
  ifNoneMatch?: '*';
  ifMatch?: string;
}

/** A piece of a write, as {@link SessionBody.next} returns it. */
export interface SessionChunk {
  /** The bytes, possibly empty. */
  data: Buffer;
  /** No bytes follow: the body ended, or failed (then `SessionBody.failure` says why). */
  done: boolean;
}

/** The state a driver commits: the new offset and the SHA-256 state of everything before it. */
export interface SessionCheckpoint {
  offset: number;
  hashState: string;
}


/** A SHA-256 whose state is saved and restored as text, loaded (with its WebAssembly) on first use. */
export async function resumableSha256(state?: string): Promise<{ update(data: Uint8Array): void; save(): string; digest(): string }> {
  const { createSHA256 } = await import('hash-wasm');
  const hasher: IHasher = await createSHA256();
  if (state === undefined || state === '') hasher.init();
  else hasher.load(Buffer.from(state, 'base64'));
  return {
    update: (data) => void hasher.update(data),
    save: () => Buffer.from(hasher.save()).toString('base64'),
    // digest() ends the hasher: digest a copy, so the state can still be saved after.
    digest: () => {
      const copy = hasher.save();
      const hex = hasher.digest('hex');
      hasher.load(copy);
      return hex;
    },
  };
}

/** The options of {@link SessionBody}. */
export interface SessionBodyOptions {
  /** The session's offset and hash state before this write. */
  from: SessionCheckpoint;
  /** The most bytes this write may bring (the declared size minus the offset, or the backend's limit). */
  limit?: number;
  /** The SHA-256 of this write's bytes alone, when the caller sent one (tus's checksum extension). */
  sha256?: string;
  /** A digest of this write's bytes alone by another algorithm (tus's sha1, sha512, md5). */
  checksum?: WriteChecksum;
  signal?: AbortSignal;
}

/** The algorithms a write's checksum may use. */
export const WRITE_CHECKSUM_ALGORITHMS = ['sha1', 'sha256', 'sha512', 'md5'] as const;

/** The digest length of each write checksum algorithm, in bytes. */
export const WRITE_CHECKSUM_BYTES: Readonly<Record<(typeof WRITE_CHECKSUM_ALGORITHMS)[number], number>> = { sha1: 20, sha256: 32, sha512: 64, md5: 16 };

/** A digest the bytes of one write must have, or nothing of the write counts. */
export interface WriteChecksum {
  algorithm: (typeof WRITE_CHECKSUM_ALGORITHMS)[number];
  digest: Buffer;
}

/**
 * The bytes of one session write, read by the driver with `next`. Bytes received before
 * the body fails (the client went away, a cancel, the size limit) are kept: `next` then
 * ends with `done` and `failure` set, and the driver commits what it stored before
 * rethrowing `failure`. With a write checksum nothing of the write may be committed
 * until it has all arrived and matched: `checkpoint()` is undefined until then.
 */
export class SessionBody {
  readonly #iterator: AsyncIterator<Uint8Array>;
  readonly #body: PutBody;
  readonly #hash: Awaited<ReturnType<typeof resumableSha256>>;
  readonly #checked: boolean;
  /** The write's own digest by the checksum's algorithm, when one other than SHA-256 was given. */
  readonly #writeHash: { hash: Hash; expected: WriteChecksum } | undefined;
  #offset: number;
  readonly #pending = new ByteQueue();
  #ended = false;
  #verified = false;
  /** Why the body ended early, when it did. */
  failure: StorageError | undefined;

  private constructor(body: PutBody, hash: Awaited<ReturnType<typeof resumableSha256>>, opts: SessionBodyOptions) {
    this.#body = body;
    this.#iterator = body[Symbol.asyncIterator]();
    this.#hash = hash;
    this.#offset = opts.from.offset;
    this.#checked = opts.sha256 !== undefined || opts.checksum !== undefined;
    this.#writeHash = opts.checksum && { hash: createHash(opts.checksum.algorithm), expected: opts.checksum };
  }

  /** The body of a write continuing from `opts.from`. */
  static async open(source: Body, opts: SessionBodyOptions): Promise<SessionBody> {
    // A SHA-256 checksum is checked by the body itself, as a put's is.
    const sha256 = opts.checksum?.algorithm === 'sha256' ? opts.checksum.digest.toString('hex') : opts.sha256;
    const checksum = opts.checksum?.algorithm === 'sha256' ? undefined : opts.checksum;
    const body = new PutBody(source, { maxSize: opts.limit, sha256, signal: opts.signal });
    return new SessionBody(body, await resumableSha256(opts.from.hashState), { ...opts, sha256, checksum });
  }

  /** The session's offset after the bytes `next` has returned so far. */
  get offset(): number {
    return this.#offset;
  }

  /**
   * Up to `max` bytes, as soon as some arrive; with `exact`, waits for exactly `max` unless
   * the body ends first. The returned bytes are hashed into the session before they are
   * returned, so a checkpoint taken after storing them covers them.
   */
  async next(max: number, exact = false): Promise<SessionChunk> {
    while (!this.#ended && (this.#pending.length === 0 || (exact && this.#pending.length < max))) await this.#pull();
    const data = this.#pending.take(max);
    this.#hash.update(data);
    this.#offset += data.length;
    return { data, done: this.#ended && this.#pending.length === 0 };
  }

  /**
   * What to commit once every byte returned so far is durably stored; undefined while a
   * write checksum has not been verified (or failed), when nothing of the write may count.
   */
  checkpoint(): SessionCheckpoint | undefined {
    if (this.#checked && !this.#verified) return undefined;
    return { offset: this.#offset, hashState: this.#hash.save() };
  }

  async #pull(): Promise<void> {
    try {
      const step = await this.#iterator.next();
      if (!step.done) {
        this.#writeHash?.hash.update(step.value);
        this.#pending.push(step.value);
        return;
      }
      this.#ended = true;
      this.#body.complete(); // throws E_CHECKSUM_MISMATCH for a write SHA-256 that differs
      if (this.#writeHash) checkWriteDigest(this.#writeHash.hash.digest(), this.#writeHash.expected);
      this.#verified = true;
    } catch (err) {
      this.#ended = true;
      this.failure = err instanceof StorageError ? err : new StorageError('E_INVALID_ARGUMENT', 'reading the body failed', { cause: err });
    }
  }

}

/** E_CHECKSUM_MISMATCH unless the write's bytes have the expected digest. */
function checkWriteDigest(actual: Buffer, expected: WriteChecksum): void {
  if (actual.length === expected.digest.length && timingSafeEqual(actual, expected.digest)) return;
  throw new StorageError('E_CHECKSUM_MISMATCH', `the write's bytes have ${expected.algorithm} ${actual.toString('base64')}, not the expected ${expected.digest.toString('base64')}; nothing of it was stored`, {
    details: { algorithm: expected.algorithm, expected: expected.digest.toString('base64'), actual: actual.toString('base64') },
  });
}

/** E_OFFSET_MISMATCH: a write at `given` to a session whose bytes end at `offset`; the current offset is in `details.offset`. */
export function offsetMismatch(id: string, given: number, offset: number): StorageError {
  return new StorageError('E_OFFSET_MISMATCH', `session ${id} is at offset ${offset}, not ${given}: ask for its offset and write from there`, { details: { offset } });
}

/** E_PRECONDITION_FAILED (retryable) for a session another request is writing now, as tus servers answer 423. */
export function sessionBusy(id: string): StorageError {
  return new StorageError('E_PRECONDITION_FAILED', `session ${id} is being written by another request; retry once it ends`, { retryable: true });
}

/** E_NOT_FOUND for a session that does not exist (or expired, or completed, or was aborted). */
export function sessionNotFound(id: string, cause?: unknown): StorageError {
  return new StorageError('E_NOT_FOUND', `no upload session ${id} (it never existed, completed, was aborted, or expired)`, { cause });
}
