/**
 * The fallback (hybrid) driver, for moving from one backend to another without a
 * flag day: writes go to the primary; reads try the primary and fall back to the
 * secondary when the object is not there (optionally copying it over on that read),
 * so an app can switch to the new backend while `stowage migrate` moves the rest.
 *
 * The two backends together behave as one store, which is what the conformance suite
 * checks: a listing is the union of both (the primary's version wins), a delete
 * removes the key from both so an old copy never reappears, and a conditional write
 * first brings a secondary-only object over so the condition sees it.
 *
 * It implements every operation of the contract itself, with no defaults, so each
 * choice below is deliberate: what goes to the primary only, what to both, and what to
 * neither (signed links and POST forms are Storage's HMAC ones, served through this
 * driver; there is no single location to copy from inside a service).
 */
import type { Readable } from 'node:stream';
import { PutBody, type PutBodyChecks } from '../../core/body.js';
import type { Driver, DriverCapabilities, DriverListOptions, DriverPresignPostOptions, DriverPutOptions, DriverReadOptions, DriverSignedUrlOptions, UnconditionalReadOptions, ObjectLocation } from '../../core/contract.js';
import { isStorageError } from '../../core/errors.js';
import { collectPage, listStart, type ListEntry } from '../../core/listing.js';
import { compareKeys } from '../../core/keys.js';
import { contentOf, copyAttributes, storedInfo } from '../../core/objects.js';
import type { InternalFilesPage, InternalPutOptions } from '../../core/internal-files.js';
import type { DriverSessionCompleteOptions, DriverSessionWriteOptions, SessionBody, SessionRecord } from '../../core/sessions.js';
import type { IncompleteUpload, ListPage, NotModified, ObjectInfo, ObjectStream, PresignedPost, SignedUrl, VerifyOptions, WriteResult, PutFileResult } from '../../core/types.js';
import { unsupported } from '../base.js';
import { isUncreatedRoot } from '../fs/errors.js';

/** Options of the fallback driver. */
export interface FallbackDriverOptions {
  /** Where writes go and reads look first (the new backend). */
  primary: Driver;
  /** Where reads look when the primary has no such object (the old backend). */
  secondary: Driver;
  /** Copy an object found only in the secondary to the primary when it is read (default false). */
  copyOnRead?: boolean;
}

/** The most keys each backend is asked for per request while merging listings. */
const MERGE_PAGE = 1000;

/** Reads from the primary, then the secondary; writes to the primary. */
export class FallbackDriver implements Driver {
  readonly name: string;
  readonly capabilities: DriverCapabilities;
  readonly #primary: Driver;
  readonly #secondary: Driver;
  readonly #copyOnRead: boolean;

  constructor(options: FallbackDriverOptions) {
    this.#primary = options.primary;
    this.#secondary = options.secondary;
    this.#copyOnRead = options.copyOnRead ?? false;
    this.name = `fallback(${this.#primary.name}→${this.#secondary.name})`;
    const [p, s] = [this.#primary.capabilities, this.#secondary.capabilities];
    const least = (a?: number, b?: number) => (a === undefined ? b : b === undefined ? a : Math.min(a, b));
    this.capabilities = {
      conditionalWrites: p.conditionalWrites,
      rangeReads: p.rangeReads && s.rangeReads,
      keyIsPrefix: p.keyIsPrefix && s.keyIsPrefix,
      maxSegmentBytes: least(p.maxSegmentBytes, s.maxSegmentBytes),
      maxObjectSize: least(p.maxObjectSize, s.maxObjectSize),
      // Links and forms are issued by Storage on its base URL and served through this
      // driver: a link presigned by the primary would miss what is only in the secondary.
      nativeSignedUrls: false,
      nativePresignPost: false,
      // This driver's own move: a copy into the primary, then a delete from both.
      nativeMove: true,
      // Files go to the primary, the way the primary stores them best.
      nativePutFile: p.nativePutFile,
      multipartUploads: p.multipartUploads || s.multipartUploads,
      // Sessions complete into the primary, where writes go.
      sessions: p.sessions,
      // Stowage's own files are the primary's: what the secondary holds (variants of its
      // objects) is made again from the object where it is missing.
      internalFiles: p.internalFiles,
    };
  }

  /** Runs `fn` on the primary; on E_NOT_FOUND, on the secondary (after copying over with copyOnRead). */
  async #either<T>(key: string, fn: (driver: Driver) => Promise<T>): Promise<T> {
    try {
      return await fn(this.#primary);
    } catch (err) {
      if (!absentFromPrimary(err)) throw err;
    }
    if (this.#copyOnRead && (await this.#promote(key))) return fn(this.#primary);
    return fn(this.#secondary);
  }

  /**
   * Copies a secondary-only object to the primary with its type, metadata and digest,
   * unless the primary gained one meanwhile. True when the primary now has the key.
   */
  async #promote(key: string): Promise<boolean> {
    let source: ObjectStream;
    try {
      source = contentOf(await this.#secondary.read(key, {}));
    } catch (err) {
      if (isStorageError(err, 'E_NOT_FOUND')) return false;
      throw err;
    }
    try {
      await this.#putCopy(key, source, { ifNoneMatch: '*' });
    } catch (err) {
      source.stream.destroy();
      if (!isStorageError(err, 'E_ALREADY_EXISTS')) throw err;
    }
    return true;
  }

  /** Writes a secondary object's bytes to the primary at `key`, with its type, metadata and digest. */
  async #putCopy(key: string, source: ObjectStream, conditions: Partial<Pick<DriverPutOptions, 'ifNoneMatch'>> = {}): Promise<WriteResult> {
    return this.#primary.put(key, new PutBody(source.stream, { sha256: source.info.sha256 }), { ...copyAttributes(source.info), ...conditions });
  }

  /** Stores in the primary. A conditional write first copies a secondary-only object over, so the condition sees it. */
  async put(key: string, body: PutBody, opts: DriverPutOptions): Promise<WriteResult> {
    if (opts.ifMatch !== undefined || opts.ifNoneMatch !== undefined) await this.#promoteIfOnlySecondary(key);
    return this.#primary.put(key, body, opts);
  }

  /** Stores a local file in the primary (when it does so natively), with the same care for conditions as `put`. */
  async putFile(key: string, path: string, opts: DriverPutOptions, checks: PutBodyChecks): Promise<WriteResult & Partial<PutFileResult>> {
    if (opts.ifMatch !== undefined || opts.ifNoneMatch !== undefined) await this.#promoteIfOnlySecondary(key);
    return this.#primary.putFile(key, path, opts, checks);
  }

  async #promoteIfOnlySecondary(key: string): Promise<void> {
    try {
      await this.#primary.stat(key);
    } catch (err) {
      if (!absentFromPrimary(err)) throw err;
      await this.#promote(key);
    }
  }

  /** The primary's info, else the secondary's; missing in both rejects with E_NOT_FOUND. */
  async stat(key: string): Promise<ObjectInfo> {
    return this.#either(key, (d) => d.stat(key));
  }

  /** Reads from the primary, else the secondary (the same options, `ifNoneMatch` too); missing in both rejects with E_NOT_FOUND. */
  read(key: string, opts: UnconditionalReadOptions): Promise<ObjectStream>;
  read(key: string, opts: DriverReadOptions): Promise<ObjectStream | NotModified>;
  async read(key: string, opts: DriverReadOptions): Promise<ObjectStream | NotModified> {
    return this.#either(key, (d) => d.read(key, opts));
  }

  /** Removes the key from both backends, so an old copy cannot reappear. A missing key resolves. */
  async delete(key: string): Promise<void> {
    await Promise.all([this.#primary.delete(key).catch(unlessUncreated), this.#secondary.delete(key)]);
  }

  /** Removes the keys from both backends; returns how many were given. */
  async deleteMany(keys: readonly string[]): Promise<number> {
    await Promise.all([this.#primary.deleteMany(keys).catch(unlessUncreated), this.#secondary.deleteMany(keys)]);
    return keys.length;
  }

  /** Copies within the primary, or from the secondary into the primary. Missing in both: E_NOT_FOUND. */
  async copy(from: string, to: string): Promise<ObjectInfo> {
    try {
      return await this.#primary.copy(from, to);
    } catch (err) {
      if (!absentFromPrimary(err)) throw err;
    }
    const source = contentOf(await this.#secondary.read(from, {}));
    if (from === to) {
      source.stream.destroy();
      return source.info;
    }
    return storedInfo(await this.#putCopy(to, source));
  }

  /** A server-side copy from another driver into the primary, where writes go (undefined when the primary cannot). */
  async copyFrom(source: Driver, from: string, to: string): Promise<ObjectInfo | undefined> {
    return this.#primary.copyFrom(source, from, to);
  }

  /** Copies to `to` in the primary, then removes `from` from both. Onto itself: a no-op. */
  async move(from: string, to: string): Promise<ObjectInfo> {
    const info = await this.copy(from, to);
    if (from !== to) await this.delete(from);
    return info;
  }

  /**
   * The union of both listings in byte order; a key in both is listed once, with the
   * primary's info. Each page asks both backends to start after the cursor's key, so
   * paging costs no more than listing each backend.
   */
  async list(opts: DriverListOptions): Promise<ListPage> {
    const cursor = listStart(opts);
    // One more than the page, so collectPage can tell whether another page follows.
    const from = { prefix: opts.prefix, delimiter: opts.delimiter, startAfter: cursor?.after, details: opts.details, limit: Math.min(MERGE_PAGE, opts.limit + 1) };
    const entries = mergeSorted(entriesOf(this.#primary, from, true), entriesOf(this.#secondary, from));
    return collectPage(entries, { prefix: opts.prefix, delimiter: opts.delimiter, cursor, limit: opts.limit });
  }

  /** Checks both backends; reports each one's facts. */
  async check(): Promise<Record<string, unknown>> {
    const [primary, secondary] = await Promise.all([this.#primary.check(), this.#secondary.check()]);
    return { primary: { backend: this.#primary.name, ...primary }, secondary: { backend: this.#secondary.name, ...secondary } };
  }

  /** Verifies both backends (creating the primary's bucket when asked). */
  async verify(opts: VerifyOptions): Promise<Record<string, unknown>> {
    const [primary, secondary] = await Promise.all([this.#primary.verify(opts), this.#secondary.verify({})]);
    return { primary: { backend: this.#primary.name, ...primary }, secondary: { backend: this.#secondary.name, ...secondary } };
  }

  /** E_UNSUPPORTED: Storage issues HMAC links, which the HTTP service serves through this driver. */
  async signedUrl(_key: string, _opts: DriverSignedUrlOptions): Promise<SignedUrl> {
    throw unsupported(this.name, 'serves signed links through Storage', 'nativeSignedUrls');
  }

  /** E_UNSUPPORTED: Storage issues HMAC-signed forms, which the HTTP service serves through this driver. */
  async presignPost(_key: string, _opts: DriverPresignPostOptions): Promise<PresignedPost> {
    throw unsupported(this.name, 'serves signed forms through Storage', 'nativePresignPost');
  }

  /** The incomplete uploads of both backends (both bill them), each backend's only where it has any. */
  async incompleteUploads(prefix: string): Promise<IncompleteUpload[]> {
    const lists = await Promise.all(this.#multipart().map((d) => d.incompleteUploads(prefix)));
    return lists.flat();
  }

  /** Aborts the upload in whichever backend has it; the other finds none, which resolves. */
  async abortUpload(upload: IncompleteUpload): Promise<void> {
    const multipart = this.#multipart();
    if (multipart.length === 0) throw unsupported(this.name, 'has no multipart uploads to abort', 'multipartUploads');
    await Promise.all(multipart.map((d) => d.abortUpload(upload)));
  }

  /** The backends that keep multipart uploads. */
  #multipart(): Driver[] {
    return [this.#primary, this.#secondary].filter((d) => d.capabilities.multipartUploads);
  }

  /** Starts the session in the primary, where its object will be stored. */
  createSession(record: SessionRecord): Promise<SessionRecord> {
    return this.#primary.createSession(record);
  }

  /** The primary's session: sessions live only there. */
  getSession(id: string): Promise<SessionRecord> {
    return this.#primary.getSession(id);
  }

  /** Writes to the primary's session. */
  writeSession(id: string, body: SessionBody, opts: DriverSessionWriteOptions): Promise<SessionRecord> {
    return this.#primary.writeSession(id, body, opts);
  }

  /** Completes in the primary (the new object supersedes a secondary copy, as a put does). */
  completeSession(id: string, opts: DriverSessionCompleteOptions): Promise<ObjectInfo> {
    return this.#primary.completeSession(id, opts);
  }

  /** Aborts the primary's session. */
  abortSession(id: string): Promise<void> {
    return this.#primary.abortSession(id);
  }

  /** Reads the primary's session. */
  readSession(id: string, opts: { signal?: AbortSignal }): Promise<Readable> {
    return this.#primary.readSession(id, opts);
  }

  /** The primary's sessions. */
  listSessions(prefix: string): Promise<SessionRecord[]> {
    return this.#primary.listSessions(prefix);
  }

  /** The primary's. */
  putInternal(name: string, data: Uint8Array, opts?: InternalPutOptions): Promise<void> {
    return this.#primary.putInternal(name, data, opts);
  }

  /** The primary's. */
  readInternal(name: string): Promise<Uint8Array | undefined> {
    return this.#primary.readInternal(name);
  }

  /** The primary's. */
  deleteInternal(names: readonly string[]): Promise<void> {
    return this.#primary.deleteInternal(names);
  }

  /** The primary's. */
  listInternal(prefix: string, cursor?: string): Promise<InternalFilesPage> {
    return this.#primary.listInternal(prefix, cursor);
  }

  /** None: the objects live in two places, so no other driver can copy them inside one service. */
  location(): ObjectLocation | undefined {
    return undefined;
  }

  /** Closes both backends. */
  async close(): Promise<void> {
    await Promise.all([this.#primary.close(), this.#secondary.close()]);
  }
}

/** True when the primary has no such object, or is a local folder that no write has created yet. */
function absentFromPrimary(err: unknown): boolean {
  return isStorageError(err, 'E_NOT_FOUND') || isUncreatedRoot(err);
}

/** Rethrows, unless the primary is a local folder no write has created yet (nothing to delete there). */
function unlessUncreated(err: unknown): void {
  if (!isUncreatedRoot(err)) throw err;
}

/** A listing entry with the sort key it merges by. */
type Keyed = { sortKey: string; entry: ListEntry };

/**
 * Every entry of one backend's listing from `startAfter` on, objects and folded prefixes
 * in byte order. The primary may be a local folder no write has created yet: empty.
 */
async function* entriesOf(driver: Driver, opts: Omit<DriverListOptions, 'cursor'>, primary = false): AsyncGenerator<Keyed> {
  let cursor: string | undefined;
  do {
    const page = await driver.list({ ...opts, cursor }).catch((err: unknown): ListPage => {
      if (primary && isUncreatedRoot(err)) return { objects: [], prefixes: [] };
      throw err;
    });
    const items: Keyed[] = [
      ...page.objects.map((info) => ({ sortKey: info.key, entry: { key: info.key, load: async () => info } })),
      ...page.prefixes.map((prefix) => ({ sortKey: prefix, entry: { prefix } })),
    ];
    yield* items.sort((a, b) => compareKeys(a.sortKey, b.sortKey));
    cursor = page.cursor;
  } while (cursor !== undefined);
}

/** Merges two sorted entry streams; on equal keys the first stream's entry wins. */
async function* mergeSorted(first: AsyncIterator<Keyed>, second: AsyncIterator<Keyed>): AsyncGenerator<ListEntry> {
  let a = await first.next();
  let b = await second.next();
  while (!a.done || !b.done) {
    const order = a.done ? 1 : b.done ? -1 : compareKeys(a.value.sortKey, b.value.sortKey);
    if (order <= 0 && !a.done) {
      yield a.value.entry;
      if (order === 0) b = await second.next();
      a = await first.next();
    } else if (!b.done) {
      yield b.value.entry;
      b = await second.next();
    }
  }
}
