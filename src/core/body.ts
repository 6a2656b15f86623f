/**
 * Write bodies. Every body Storage accepts becomes a {@link PutBody}: one async
 * iterable of byte chunks that computes SHA-256 and size as it streams and enforces
 * the size limit. Drivers consume it and call `complete()` before committing, so the
 * integrity check lives here once instead of in every driver.
 */
import { createHash, type Hash } from 'node:crypto';
import { constants as fsConstants } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import { StorageError, abortedError, errorMessage } from './errors.js';
import { tooLarge } from './objects.js';
import type { OnProgress } from './progress.js';
import type { Body } from './types.js';

/** The digest and size of a fully consumed body. */
export interface BodySummary {
  sha256: string;
  size: number;
}

/** What {@link PutBody} checks while it streams. */
export interface PutBodyChecks {
  /** Expected lowercase hex SHA-256. */
  sha256?: string;
  /** Largest accepted size in bytes. */
  maxSize?: number;
  /** Aborts the stream. */
  signal?: AbortSignal;
  /** Told the bytes read so far after each chunk. */
  onProgress?: OnProgress;
  /**
   * The body's size when the caller knows it (a file's, or declared by `PutOptions.size`):
   * `onProgress`'s total, and what a quota reserves before a byte is stored. A body that
   * turns out longer or shorter fails with E_INVALID_ARGUMENT, so nothing is stored.
   */
  size?: number;
}

/**
 * A body being written. Iterate it once to get the bytes; then `complete()` returns
 * the SHA-256 and size, or throws E_CHECKSUM_MISMATCH when they differ from what the
 * caller expected. Iteration throws E_TOO_LARGE as soon as `maxSize` is passed, and
 * E_INVALID_ARGUMENT when the caller's stream fails.
 */
export class PutBody implements AsyncIterable<Uint8Array> {
  /** The size when known in advance (buffers and strings, or declared by `checks.size`), else undefined. */
  readonly knownSize: number | undefined;
  /** The SHA-256 the caller expects, if given (lets a backend store it before the body is read). */
  readonly expectedSha256: string | undefined;
  readonly #source: AsyncIterable<Uint8Array | string>;
  readonly #checks: PutBodyChecks;
  readonly #hash: Hash = createHash('sha256');
  #size = 0;
  #consumed = false;
  #started = false;

  constructor(body: Body, checks: PutBodyChecks = {}) {
    this.#checks = checks;
    this.expectedSha256 = checks.sha256;
    if (typeof body === 'string' || body instanceof Uint8Array) {
      const bytes = typeof body === 'string' ? Buffer.from(body, 'utf8') : body;
      this.knownSize = bytes.byteLength;
      this.#source = (async function* () {
        yield bytes;
      })();
      if (checks.maxSize !== undefined && bytes.byteLength > checks.maxSize) throw tooLarge(checks.maxSize);
      if (checks.size !== undefined && checks.size !== bytes.byteLength) throw wrongSize(checks.size, bytes.byteLength);
    } else if (isAsyncIterable(body)) {
      this.#source = body as AsyncIterable<Uint8Array | string>;
      this.knownSize = checks.size;
    } else {
      throw new StorageError(
        'E_INVALID_ARGUMENT',
        'body must be a Buffer, Uint8Array, string, Readable, web ReadableStream or async iterable of bytes',
      );
    }
  }

  async *[Symbol.asyncIterator](): AsyncIterator<Uint8Array> {
    if (this.#started) throw new StorageError('E_INVALID_ARGUMENT', 'a body can only be consumed once');
    this.#started = true;
    const { maxSize, signal } = this.#checks;
    if (signal?.aborted) throw abortedError(signal);
    const iterator = this.#source[Symbol.asyncIterator]();
    try {
      for (;;) {
        let step: IteratorResult<Uint8Array | string>;
        try {
          step = await (signal ? nextUnlessAborted(iterator, signal) : iterator.next());
        } catch (err) {
          throw err instanceof StorageError
            ? err
            : new StorageError('E_INVALID_ARGUMENT', `reading the body failed: ${errorMessage(err)}`, { cause: err });
        }
        if (step.done) break;
        if (signal?.aborted) throw abortedError(signal);
        const chunk = toBytes(step.value);
        if (chunk.byteLength === 0) continue;
        this.#size += chunk.byteLength;
        if (maxSize !== undefined && this.#size > maxSize) throw tooLarge(maxSize);
        if (this.knownSize !== undefined && this.#size > this.knownSize) throw wrongSize(this.knownSize, this.#size, 'more than');
        this.#hash.update(chunk);
        this.#checks.onProgress?.({ bytes: this.#size, total: this.knownSize });
        yield chunk;
      }
      if (this.knownSize !== undefined && this.#size < this.knownSize) throw wrongSize(this.knownSize, this.#size);
      this.#consumed = true;
    } finally {
      // Stop the caller's stream when we bail out early (size limit, driver failure, cancel).
      // After a cancel a read may still be pending, and a generator's return() waits for
      // it: ask the source to stop without waiting.
      if (!this.#consumed && signal?.aborted) iterator.return?.().catch(() => undefined);
      else if (!this.#consumed) await iterator.return?.();
    }
  }

  /**
   * Call after the last chunk. Returns the digest and size; throws E_CHECKSUM_MISMATCH
   * when the caller passed a different expected SHA-256. Throws E_INVALID_ARGUMENT if the
   * body was not fully consumed, so a driver bug can never commit a truncated object.
   */
  complete(): BodySummary {
    if (!this.#consumed) throw new StorageError('E_INVALID_ARGUMENT', 'the body was not fully consumed');
    const sha256 = this.#hash.copy().digest('hex');
    const expected = this.#checks.sha256;
    if (expected !== undefined && expected !== sha256) {
      throw new StorageError('E_CHECKSUM_MISMATCH', `SHA-256 mismatch: expected ${expected}, body has ${sha256}`, {
        details: { expected, actual: sha256 },
      });
    }
    return { sha256, size: this.#size };
  }
}

/**
 * A body made from another, for a layer that changes how the bytes reach the backend
 * (an outbox keeping them, a quota metering them): it keeps the source's known size,
 * expected digest and `complete()`, so the caller's own checks still decide the commit.
 * A subclass gives the bytes.
 */
export abstract class DerivedBody extends PutBody {
  override readonly knownSize: number | undefined;
  override readonly expectedSha256: string | undefined;
  /** The body this one is made from. */
  protected readonly source: PutBody;

  constructor(source: PutBody) {
    super(new Uint8Array(0));
    this.knownSize = source.knownSize;
    this.expectedSha256 = source.expectedSha256;
    this.source = source;
  }

  override complete(): BodySummary {
    return this.source.complete();
  }
}

/** A body whose length is not the size its caller declared (`size`, a file's size at open). */
function wrongSize(declared: number, got: number, relation: 'more than' | '' = ''): StorageError {
  const said = relation === '' ? `${got} bytes` : `more than ${declared} bytes`;
  return new StorageError('E_INVALID_ARGUMENT', `the body holds ${said}, but its declared size is ${declared} bytes; nothing was stored`, { details: { declaredSize: declared } });
}

/**
 * The iterator's next step, or E_ABORTED as soon as `signal` fires: a cancel must not
 * wait for a source that has stalled. (A listener per step rather than one long-lived
 * promise raced against every step, which would keep every step's chunk reachable.)
 */
function nextUnlessAborted<T>(iterator: AsyncIterator<T>, signal: AbortSignal): Promise<IteratorResult<T>> {
  return new Promise((resolve, reject) => {
    const onAbort = () => reject(abortedError(signal));
    signal.addEventListener('abort', onAbort, { once: true });
    iterator.next().then(
      (step) => {
        signal.removeEventListener('abort', onAbort);
        resolve(step);
      },
      (err: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(err instanceof Error ? err : new Error(String(err)));
      },
    );
  });
}

function isAsyncIterable(value: unknown): value is AsyncIterable<unknown> {
  return typeof value === 'object' && value !== null && Symbol.asyncIterator in value;
}

function toBytes(chunk: unknown): Uint8Array {
  if (chunk instanceof Uint8Array) return chunk;
  if (typeof chunk === 'string') return Buffer.from(chunk, 'utf8');
  throw new StorageError('E_INVALID_ARGUMENT', `body chunks must be bytes, got ${typeof chunk}`);
}


/** Reads a whole stream into one Buffer (for `get`, and small HTTP responses); a single chunk is not copied. */
export async function readAll(stream: AsyncIterable<Uint8Array | string>): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(typeof chunk === 'string' ? Buffer.from(chunk) : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength));
  return chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks);
}

/**
 * Opens a local file to store, once and without blocking (a FIFO would wait for a
 * writer), and checks what was opened: a stat of the path and a later open could meet
 * two different files. E_INVALID_ARGUMENT when it cannot be read or is not a regular file.
 */
export async function openRegularFile(path: string): Promise<{ handle: FileHandle; size: number }> {
  let handle: FileHandle | undefined;
  try {
    handle = await open(path, fsConstants.O_RDONLY | fsConstants.O_NONBLOCK);
    const stats = await handle.stat();
    if (!stats.isFile()) throw new Error('not a regular file');
    return { handle, size: stats.size };
  } catch (err) {
    await handle?.close();
    throw new StorageError('E_INVALID_ARGUMENT', `cannot read file ${path}: ${errorMessage(err)}`, { cause: err });
  }
}
