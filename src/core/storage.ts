/**
 * The public API. Storage validates every key and option once, turns bodies into
 * hashed {@link PutBody} streams, and gives every driver the same semantics
 * (listing pages, deleteMany by prefix, move, usage, signed URLs, health).
 */
import { openRegularFile, PutBody, readAll } from './body.js';
import { StorageError, abortedError, isStorageError, withContext } from './errors.js';
import { normalizeKey, normalizePrefix } from './keys.js';
import { contentTypeFromName, copyAttributes, guessContentType, isQueued, statOrUndefined } from './objects.js';
import { reportDone, type OnProgress } from './progress.js';
import { normalizePublicBaseUrl, publicUrlOf } from './urls.js';
import { objectReader, type ObjectReader } from './reads.js';
import { deleteInBatches, keysOf } from './listing.js';
import { bodyChecks, driverListOptions, driverPutOptions, driverReadOptions, MAX_LIST_LIMIT, validatePresignPostOptions, validateSignedUrlOptions } from './options.js';
import { SignedLinks, type SignedMethod, type VerifiedSignedUrl } from './signing.js';
import { checkDriver, type Capabilities, type Driver } from './contract.js';
import { UploadSessions } from './upload-sessions.js';
import { resolveImages, type ImagesOptions } from '../images/options.js';
import { VariantStore, type VariantImage } from '../images/variant-store.js';
import type { Body, ConditionalGetOptions, GetOptions, HealthReport, IncompleteUpload, ListOptions, ListPage, NotModified, ObjectInfo, PresignedPost, PresignPostOptions, PutOptions, SignedUrl, SignedUrlOptions, Usage, VerifyOptions, WriteResult, PutFileResult } from './types.js';

/** Options that apply to a Storage whatever its driver. */
export interface StorageOptions {
  /** Base URL of the Stowage HTTP service, for signed links on backends that cannot presign. */
  baseUrl?: string;
  /** Secret for HMAC-signed links (at least 16 characters): alone it verifies them, with `baseUrl` it issues them too. */
  signingSecret?: string;
  /** Where objects can be fetched publicly (a CDN, a public bucket), for `publicUrl`. */
  publicBaseUrl?: string;
  /**
   * Image variants (`variant()`): which exist and the limits of rendering them. By default
   * a `thumb` (200x200, cover, format by `Accept`); `false` turns variants off.
   */
  images?: ImagesOptions | false;
}

/**
 * Object storage over one driver. Every method (but `publicUrl` and `verifySignedUrl`) is
 * async and rejects only with {@link StorageError}. `Written` is what a write resolves to:
 * the stored object's info, or with an outbox also a `QueuedWrite` (`createStorage` types
 * it from its options; tell the two apart with `isQueued`).
 */
export class Storage<Written extends WriteResult = ObjectInfo> {
  /** The driver behind this storage. */
  readonly driver: Driver;
  readonly #options: StorageOptions;
  /** Issues and verifies the HMAC links, so the one secret is given to the storage only. */
  readonly #links: SignedLinks;
  readonly #publicBase: string | undefined;
  /** Operations in progress, so `close()` can let them finish (or clean up) first. Shared with `withDriver` copies. */
  #inFlight = new Set<Promise<unknown>>();
  /**
   * Resumable upload sessions whose state lives in the backend: create one for a key,
   * write its bytes at offsets from any process, complete or abort it (see
   * {@link UploadSessions}). On backends with `capabilities.sessions`.
   */
  readonly sessions: UploadSessions<Written>;
  /**
   * The image variants of this storage's objects: `build` renders them ahead of requests,
   * `purge` removes stored ones that can no longer be served (see {@link VariantStore});
   * `variant()` gets one. Stored variants are removed with their original.
   */
  readonly variants: VariantStore;

  constructor(driver: Driver, options: StorageOptions = {}) {
    this.driver = checkDriver(driver);
    this.#options = options;
    this.#links = new SignedLinks(options);
    this.#publicBase = options.publicBaseUrl === undefined ? undefined : normalizePublicBaseUrl(options.publicBaseUrl);
    this.sessions = new UploadSessions<Written>(this.driver, (operation, key, fn, signal) => this.#run(operation, key, fn, signal), (info) => this.#renderEager(info));
    this.variants = new VariantStore(this.driver, resolveImages(options.images));
  }

  /**
   * The public URL of `key` under `publicBaseUrl`, each key segment percent-encoded
   * (`photos/a b.jpg` → `https://cdn.example.com/media/photos/a%20b.jpg`). The one
   * synchronous method: it needs no backend, and throws (E_INVALID_KEY, or E_CONFIG_INVALID
   * when no public base is configured) instead of rejecting. It says where the object
   * would be served, not that it exists or is public.
   */
  publicUrl(key: string): string {
    return publicUrlOf(this.#publicBase, normalizeKey(key));
  }

  /**
   * The same storage (options included) over a wrapped driver, e.g. one that records
   * metrics: `storage.withDriver((d) => withMetrics(d, metrics))`.
   */
  withDriver(wrap: (driver: Driver) => Driver): Storage<Written> {
    const wrapped = new Storage<Written>(wrap(this.driver), this.#options);
    // Operations through either instance are in flight for both, so closing one waits for all.
    wrapped.#inFlight = this.#inFlight;
    return wrapped;
  }

  /** The backend name, e.g. `fs`. */
  get backend(): string {
    return this.driver.name;
  }

  /**
   * What this storage supports: its driver's capabilities, plus `signedUrls` (links the
   * backend presigns, or HMAC links when `baseUrl` and `signingSecret` are set).
   */
  get capabilities(): Capabilities {
    const driver = this.driver.capabilities;
    return { ...driver, signedUrls: driver.nativeSignedUrls || this.#links.canSign };
  }

  /**
   * Runs a driver call, attaching operation, key and backend to any error, and tracks it
   * until it settles. With the caller's `signal`: nothing starts once it has fired, and
   * a call that fails after it fired failed because of it (E_ABORTED, whatever the
   * driver's own error), so a retry loop never retries the caller's own cancel.
   */
  async #run<T>(operation: string, key: string | undefined, fn: () => Promise<T>, signal?: AbortSignal): Promise<T> {
    const context = { operation, key, backend: this.driver.name };
    if (signal?.aborted) throw withContext(abortedError(signal), context);
    const call = fn();
    this.#inFlight.add(call);
    try {
      return await call;
    } catch (err) {
      throw withContext(signal?.aborted && !isStorageError(err, 'E_ABORTED') ? abortedError(signal, err) : err, context);
    } finally {
      this.#inFlight.delete(call);
    }
  }

  /**
   * Stores a body at `key` and returns its info. Bodies: Buffer/Uint8Array, string,
   * Node Readable, web ReadableStream or AsyncIterable of bytes, of any length. The
   * SHA-256 is computed while streaming and stored with the object. Readers see the
   * old or the new object, never a partial one; if the body fails, is too large or
   * does not match `sha256`, nothing is stored.
   */
  async put(key: string, body: Body, opts: PutOptions = {}): Promise<Written> {
    return this.#run('put', typeof key === 'string' ? key : undefined, async () => {
      const k = normalizeKey(key);
      const driverOpts = driverPutOptions(k, opts);
      const info = await this.driver.put(k, new PutBody(body, bodyChecks(opts)), driverOpts);
      reportDone(opts.onProgress, info.size);
      this.#renderEager(info);
      return info as Written;
    }, opts.signal);
  }

  /**
   * Stores a local file, with the same options and guarantees as `put`. The content
   * type defaults to a guess from the key, then from the file name. Drivers may copy
   * the file more efficiently than a stream (the fs driver uses the kernel's copy), and
   * resume an interrupted upload of the same file (the S3 driver): `resumedBytes` says
   * how much of the file was already stored and not sent again.
   */
  async putFile(key: string, path: string, opts: PutOptions = {}): Promise<Written & PutFileResult> {
    return this.#run('putFile', typeof key === 'string' ? key : undefined, async () => {
      const k = normalizeKey(key);
      const contentType = opts.contentType ?? contentTypeFromName(k) ?? guessContentType(path);
      const driverOpts = driverPutOptions(k, { ...opts, contentType });
      // Checked before the file is opened, so a bad option leaves no handle open.
      const optionChecks = bodyChecks(opts);
      const { handle, size } = await openRegularFile(path);
      const checks = { ...optionChecks, size };
      let info: WriteResult & Partial<PutFileResult>;
      if (this.driver.capabilities.nativePutFile) {
        // The driver opens the file its own way (the fs driver copies it in the kernel).
        await handle.close();
        info = await this.driver.putFile(k, path, driverOpts, checks);
      } else {
        const stream = handle.createReadStream({ highWaterMark: 1024 * 1024 });
        // Closes the file also when the driver failed before reading it.
        info = await this.driver.put(k, new PutBody(stream, checks), driverOpts).finally(() => stream.destroy());
      }
      reportDone(opts.onProgress, info.size);
      this.#renderEager(info);
      return { ...(info as Written), resumedBytes: info.resumedBytes ?? 0 };
    }, opts.signal);
  }

  /**
   * Reads a whole object (or a range) into memory. Missing: E_NOT_FOUND; a fired `signal`:
   * E_ABORTED. With `ifNoneMatch`: {@link NotModified} when the object still has that ETag.
   */
  get(key: string, opts: ConditionalGetOptions): Promise<Buffer | NotModified>;
  get(key: string, opts?: GetOptions): Promise<Buffer>;
  async get(key: string, opts: GetOptions & { ifNoneMatch?: string } = {}): Promise<Buffer | NotModified> {
    return this.#run('get', key, async () => {
      // Read whole where the driver can (one read into one buffer), unless the caller
      // follows progress, which a stream reports chunk by chunk.
      const result = await this.driver.read(normalizeKey(key), { ...driverReadOptions(opts), bufferUpTo: opts.onProgress ? undefined : Infinity });
      if (result.notModified) return result;
      const object = objectReader(result, opts);
      return object.bytes ?? readAll(object.stream);
    }, opts.signal);
  }

  /**
   * Opens an object for streaming, optionally a byte range `{ start, end? }` (end
   * inclusive) or `{ suffix: n }`. Returns the stream, the object's info and the
   * resolved range, plus `bytes` and `release` where the driver offers them (see
   * ObjectStream). E_NOT_FOUND when missing; E_RANGE_NOT_SATISFIABLE past the end. When
   * `signal` fires, the call rejects (or the stream is destroyed) with E_ABORTED.
   * `toWeb()` gives the content as a web stream (for a fetch `Response`). With
   * `ifNoneMatch`: {@link NotModified} instead when the object still has that ETag
   * (checked before the range; nothing is opened).
   */
  getStream(key: string, opts: ConditionalGetOptions): Promise<ObjectReader | NotModified>;
  getStream(key: string, opts?: GetOptions): Promise<ObjectReader>;
  async getStream(key: string, opts: GetOptions & { ifNoneMatch?: string } = {}): Promise<ObjectReader | NotModified> {
    return this.#run('getStream', key, async () => {
      const result = await this.driver.read(normalizeKey(key), driverReadOptions(opts));
      return result.notModified ? result : objectReader(result, opts);
    }, opts.signal);
  }

  /** Returns an object's info; E_NOT_FOUND when missing. */
  async stat(key: string): Promise<ObjectInfo> {
    return this.#run('stat', key, () => this.driver.stat(normalizeKey(key)));
  }

  /** True when the object exists. Invalid keys still reject with E_INVALID_KEY. */
  async exists(key: string): Promise<boolean> {
    return (await statOrUndefined(this, key)) !== undefined;
  }

  /** Deletes an object and its stored image variants. A missing key resolves. */
  async delete(key: string): Promise<void> {
    return this.#run('delete', key, async () => {
      const k = normalizeKey(key);
      await this.driver.delete(k);
      await this.#dropVariants([k]);
    });
  }

  /**
   * Removes the stored image variants of deleted or moved keys. A failure does not fail
   * the call, whose object is already gone (or queued for deletion by an outbox while the
   * backend is down): a variant is served only beside its original's bytes, so one left
   * behind is never served, and `variants.purge()` removes it.
   */
  async #dropVariants(keys: string[]): Promise<void> {
    await this.variants.drop(keys).catch(() => undefined);
  }

  /**
   * Deletes a list of keys, or every object under a non-empty prefix, and returns how
   * many keys were deleted (for a list: every distinct key given, since deleting a
   * missing key succeeds). An empty prefix is refused, so a typo cannot wipe a store.
   */
  async deleteMany(target: readonly string[] | { prefix: string }): Promise<number> {
    return this.#run('deleteMany', undefined, async () => {
      const dropVariants = (keys: string[]) => this.#dropVariants(keys);
      if (Array.isArray(target)) return deleteInBatches(this.driver, new Set((target as readonly string[]).map(normalizeKey)), dropVariants);
      const prefix = normalizePrefix((target as { prefix?: unknown } | null)?.prefix);
      if (prefix === '') throw new StorageError('E_INVALID_ARGUMENT', 'deleteMany needs a non-empty prefix or a list of keys');
      // Deleting while paging is safe with our cursors (a page starts strictly after the last key).
      return deleteInBatches(this.driver, keysOf(this.#objects(prefix, false)), dropVariants);
    });
  }

  /**
   * One page of objects in UTF-8 byte order of their keys, plus common prefixes when
   * a delimiter is given. Pass `cursor` from the previous page to continue; pages
   * never repeat or skip keys, even with writes between pages. `limit`: 1 to 1000.
   */
  async list(opts: ListOptions = {}): Promise<ListPage> {
    return this.#run('list', undefined, async () => {
      const page = await this.driver.list(driverListOptions(opts));
      // A driver that could not stop half way still must not hand out a cancelled page.
      if (opts.signal?.aborted) throw abortedError(opts.signal);
      return page;
    }, opts.signal);
  }

  /**
   * Iterates over every object under `prefix`, page by page, in byte order. With
   * `details: false` only key, size, etag and lastModified are reliable, which spares
   * backends like S3 a request per object. A fired `signal` ends it with E_ABORTED.
   */
  async *listAll(opts: { prefix?: string; details?: boolean; signal?: AbortSignal } = {}): AsyncGenerator<ObjectInfo> {
    // Validated like list()'s prefix, so a bad one fails with the same context.
    yield* this.#objects(await this.#run('list', undefined, async () => normalizePrefix(opts.prefix)), opts.details ?? true, opts.signal);
  }

  /**
   * Every object under a normalized prefix, page by page. With `details` false only key,
   * size, etag and lastModified are reliable, which is all usage and deleteMany need and
   * spares backends like S3 a request per object.
   */
  async *#objects(prefix: string, details: boolean, signal?: AbortSignal): AsyncGenerator<ObjectInfo> {
    let cursor: string | undefined;
    do {
      const page = await this.#run('list', undefined, () => this.driver.list({ prefix, cursor, limit: MAX_LIST_LIMIT, details, signal }), signal);
      if (signal?.aborted) throw withContext(abortedError(signal), { operation: 'list', backend: this.driver.name });
      yield* page.objects;
      cursor = page.cursor;
    } while (cursor !== undefined);
  }

  /** Copies an object with its content type, metadata and checksum. E_NOT_FOUND when `from` is missing. */
  async copy(from: string, to: string): Promise<ObjectInfo> {
    return this.#run('copy', from, () => this.driver.copy(normalizeKey(from), normalizeKey(to)));
  }

  /** Moves an object (keeps content type, metadata, checksum); afterwards `from` is gone. */
  async move(from: string, to: string): Promise<ObjectInfo> {
    return this.#run('move', from, async () => {
      const src = normalizeKey(from);
      const dst = normalizeKey(to);
      if (src === dst) return this.driver.stat(src);
      let info: ObjectInfo;
      if (this.driver.capabilities.nativeMove) {
        info = await this.driver.move(src, dst);
      } else {
        info = await this.driver.copy(src, dst);
        await this.driver.delete(src);
      }
      // The source's variants are gone with it; the destination's are made again from its new bytes.
      await this.#dropVariants([src, dst]);
      return info;
    });
  }

  /**
   * A URL a client can use without credentials until it expires: GET to download,
   * PUT to upload (bound to `contentType` and `maxSize` when given). Backends that
   * presign natively (S3) do so; others get an HMAC-signed link on `baseUrl`, which
   * needs `baseUrl` and `signingSecret`, else E_CONFIG_INVALID naming what is missing.
   */
  async signedUrl(key: string, opts: SignedUrlOptions): Promise<SignedUrl> {
    return this.#run('signedUrl', key, async () => {
      const k = normalizeKey(key);
      const valid = validateSignedUrlOptions(opts);
      // Only the service renders variants: the link is always its own, never the backend's.
      if (valid.variant !== undefined) this.variants.check(valid.variant);
      else if (this.driver.capabilities.nativeSignedUrls) return this.driver.signedUrl(k, valid);
      return this.#links.signUrl(k, valid, this.backend);
    });
  }

  /**
   * A form for browser uploads without credentials until it expires: POST `fields`
   * and then a `file` field to `url` as multipart/form-data, bounded by `maxSize` and
   * `contentType`. S3 backends issue an S3 POST policy; others get an HMAC-signed
   * form action on `baseUrl` (the HTTP service's `/files/` route), which needs
   * `baseUrl` and `signingSecret`, else E_CONFIG_INVALID naming what is missing.
   */
  async presignPost(key: string, opts: PresignPostOptions = {}): Promise<PresignedPost> {
    return this.#run('presignPost', key, async () => {
      const k = normalizeKey(key);
      const valid = validatePresignPostOptions(opts);
      if (this.driver.capabilities.nativePresignPost) return this.driver.presignPost(k, valid);
      return this.#links.signPost(k, valid, this.backend);
    });
  }

  /**
   * The terms (`{ key, method, expiresAt, ... }`) an HMAC link of this storage grants a request made with `method`; HEAD uses a GET link. Synchronous.
   * E_ACCESS_DENIED when it expired, was tampered with, or was signed for another method or secret; E_CONFIG_INVALID without `signingSecret` (alone enough).
   */
  verifySignedUrl(url: string | URL, method: SignedMethod | 'HEAD'): VerifiedSignedUrl {
    return this.#links.verify(url, method, this.backend);
  }

  /**
   * Multipart uploads under `prefix` that were started and never finished, oldest
   * first. Backends without multipart uploads (fs, memory) have none: an interrupted
   * write there is a temp file that is removed.
   */
  async incompleteUploads(opts: { prefix?: string } = {}): Promise<IncompleteUpload[]> {
    return this.#run('incompleteUploads', undefined, async () => {
      const prefix = normalizePrefix(opts.prefix);
      if (!this.driver.capabilities.multipartUploads) return [];
      const uploads = await this.driver.incompleteUploads(prefix);
      return uploads.sort((a, b) => a.initiated.getTime() - b.initiated.getTime());
    });
  }

  /** Aborts an upload from {@link incompleteUploads}, freeing its parts. */
  async abortUpload(upload: IncompleteUpload): Promise<void> {
    return this.#run('abortUpload', upload.key, async () => {
      if (!this.driver.capabilities.multipartUploads) throw new StorageError('E_UNSUPPORTED', `the ${this.backend} backend has no multipart uploads to abort`);
      await this.driver.abortUpload(upload);
    });
  }

  /**
   * Copies `from` of another storage to `to` here (default the same key) with its type,
   * metadata, headers and digest. Inside the backend when it can (two S3 storages on one
   * service with the same keys); otherwise streamed, with the source's stored digest
   * checked on the way, so a corrupted source is refused (E_CHECKSUM_MISMATCH).
   * Reports which it did in `copiedBy`. `onProgress` follows the bytes streamed (a copy
   * inside the service reports once, when done); `signal` cancels a streamed copy.
   */
  async copyFrom(source: Storage<WriteResult>, from: string, to: string = from, opts: { onProgress?: OnProgress; signal?: AbortSignal } = {}): Promise<Written & { copiedBy: 'service' | 'stream' }> {
    return this.#run('copyFrom', to, async () => {
      const [fromKey, toKey] = [normalizeKey(from), normalizeKey(to)];
      const native = await this.driver.copyFrom(source.driver, fromKey, toKey);
      if (native) {
        reportDone(opts.onProgress, native.size);
        return { ...(native as Written), copiedBy: 'service' as const };
      }
      const { stream, info } = await source.getStream(fromKey, { signal: opts.signal });
      const copied = await this.put(toKey, stream, { ...copyAttributes(info), sha256: info.sha256, onProgress: opts.onProgress, signal: opts.signal });
      return { ...copied, copiedBy: 'stream' as const };
    }, opts.signal);
  }

  /**
   * Checks the backend is usable (bucket reachable, credentials accepted), optionally
   * creating a missing bucket. Rejects with a message saying what to fix.
   */
  async verify(opts: VerifyOptions = {}): Promise<Record<string, unknown>> {
    return this.#run('verify', undefined, () => this.driver.verify(opts));
  }

  /** Counts objects and bytes under `prefix` (everything by default). */
  async usage(opts: { prefix?: string } = {}): Promise<Usage> {
    return this.#run('usage', undefined, async () => {
      const total: Usage = { objects: 0, bytes: 0 };
      for await (const info of this.#objects(normalizePrefix(opts.prefix), false)) {
        total.objects++;
        total.bytes += info.size;
      }
      return total;
    });
  }

  /** Checks the backend answers. Never rejects: failures come back as `{ ok: false, detail.error }`. */
  async health(): Promise<HealthReport> {
    const started = performance.now();
    try {
      const detail = await this.driver.check();
      return { ok: true, backend: this.backend, latencyMs: Math.round(performance.now() - started), detail };
    } catch (err) {
      const se = withContext(err, { operation: 'health', backend: this.backend });
      return { ok: false, backend: this.backend, latencyMs: Math.round(performance.now() - started), detail: { code: se.code, error: se.message } };
    }
  }

  /**
   * The variant `name` of the image at `key` (see `images` in the options), in the format
   * the request's `accept` picks for a variant of format `auto`: read back when stored for
   * the object's current bytes, else rendered, stored and returned (`cached` says which).
   * E_NOT_FOUND for a missing original; E_INVALID_ARGUMENT for an unknown variant
   * (`details.reason` `variant`), an original that is not a JPEG, PNG, WebP, GIF or AVIF
   * (`type`) or cannot be decoded (`damaged`); E_TOO_LARGE past the byte or pixel limit;
   * E_UNAVAILABLE (retryable) when the render queue is full; E_UNSUPPORTED when variants
   * are off.
   */
  async variant(key: string, name: string, opts: { accept?: string; signal?: AbortSignal } = {}): Promise<VariantImage> {
    return this.#run('variant', key, () => this.variants.get(normalizeKey(key), name, opts.accept), opts.signal);
  }

  /** Starts the eager variants of a stored image, tracked until they settle (a failure only means the first request renders). */
  #renderEager(info: WriteResult): void {
    // With the queue full an eager render is skipped, and the first request renders instead.
    if (!this.variants.hasEager || isQueued(info) || !info.contentType.startsWith('image/')) return;
    const names = this.variants.eagerNames;
    const build = this.variants.build(info.key, names).catch(() => undefined);
    this.#inFlight.add(build);
    void build.finally(() => this.#inFlight.delete(build));
  }

  /**
   * Waits for operations in progress to settle (a failed write finishes its clean-up, an
   * S3 upload its abort, a rendered variant its store), then releases the driver's resources.
   */
  async close(): Promise<void> {
    await Promise.allSettled([...this.#inFlight]);
    await this.variants.flush();
    await this.driver.close();
  }
}
