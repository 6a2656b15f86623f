/**
 * The in-memory driver: the same semantics as the filesystem driver, for users'
 * own tests and for development. Objects live in this process only.
 */
import { Readable } from 'node:stream';
import type { PutBody } from '../../core/body.js';
import { compareKeys } from '../../core/keys.js';
import { collectPage, listStart, type ListEntry } from '../../core/listing.js';
import { bufferedObject, checkWritePreconditions, cloneInfo, etagFromSha256, notFound, notModifiedIf, resolveRange } from '../../core/objects.js';
import type { DriverCapabilities, DriverListOptions, DriverPutOptions, DriverReadOptions, UnconditionalReadOptions } from '../../core/contract.js';
import type { ListPage, NotModified, ObjectInfo, ObjectStream } from '../../core/types.js';
import { offsetMismatch, sessionNotFound, type DriverSessionCompleteOptions, type DriverSessionWriteOptions, type SessionBody, type SessionRecord } from '../../core/sessions.js';
import { InternalFilesInMemory, type InternalFilesPage } from '../../core/internal-files.js';
import { BaseDriver, BASE_DRIVER_CAPABILITIES } from '../base.js';
import { SortedKeys } from './sorted-keys.js';

interface StoredObject {
  data: Buffer;
  info: ObjectInfo;
}

/** Chunk size for read streams, so large objects stream like files do. */
const READ_CHUNK = 256 * 1024;

/** Keeps objects in a Map with a byte-ordered key index. Nothing is native beyond the required operations. */
export class MemoryDriver extends BaseDriver {
  readonly name = 'memory';
  readonly capabilities: DriverCapabilities = { ...BASE_DRIVER_CAPABILITIES, conditionalWrites: true, rangeReads: true, keyIsPrefix: true, sessions: true, internalFiles: true };
  readonly #objects = new Map<string, StoredObject>();
  /** Upload sessions: their record and the bytes committed so far. */
  readonly #sessions = new Map<string, { record: SessionRecord; chunks: Buffer[] }>();
  readonly #index = new SortedKeys();
  readonly #internal = new InternalFilesInMemory();

  /** Buffers the body, then commits in one synchronous step, so writers never interleave. */
  async put(key: string, body: PutBody, opts: DriverPutOptions): Promise<ObjectInfo> {
    const chunks: Uint8Array[] = [];
    for await (const chunk of body) chunks.push(chunk);
    const { sha256, size } = body.complete();
    checkWritePreconditions(key, this.#objects.get(key)?.info, opts);
    const info: ObjectInfo = {
      key,
      size,
      etag: etagFromSha256(sha256),
      sha256,
      contentType: opts.contentType,
      lastModified: new Date(),
      metadata: { ...opts.metadata },
      cacheControl: opts.cacheControl,
      contentDisposition: opts.contentDisposition,
    };
    this.#store(key, { data: Buffer.concat(chunks, size), info });
    return cloneInfo(info);
  }

  #store(key: string, object: StoredObject): void {
    if (!this.#objects.has(key)) this.#index.add(key);
    this.#objects.set(key, object);
  }

  #get(key: string): StoredObject {
    const object = this.#objects.get(key);
    if (!object) throw notFound(key);
    return object;
  }

  /** Returns a copy of the info; a missing key rejects with E_NOT_FOUND. */
  async stat(key: string): Promise<ObjectInfo> {
    return cloneInfo(this.#get(key).info);
  }

  /**
   * Streams copies of the stored bytes, so callers can never mutate the store. A read
   * of one chunk or less is handed over as bytes, without a stream.
   */
  read(key: string, opts: UnconditionalReadOptions): Promise<ObjectStream>;
  read(key: string, opts: DriverReadOptions): Promise<ObjectStream | NotModified>;
  async read(key: string, opts: DriverReadOptions): Promise<ObjectStream | NotModified> {
    const { data, info } = this.#get(key);
    const unchanged = notModifiedIf(info, opts.ifNoneMatch);
    if (unchanged) return unchanged;
    const range = opts.range ? resolveRange(opts.range, info.size) : undefined;
    const start = range?.start ?? 0;
    const end = range ? range.end + 1 : data.length;
    if (end - start <= READ_CHUNK) return bufferedObject(Buffer.from(data.subarray(start, end)), cloneInfo(info), range);
    function* chunks(): Generator<Buffer> {
      for (let at = start; at < end; at += READ_CHUNK) yield Buffer.from(data.subarray(at, Math.min(end, at + READ_CHUNK)));
    }
    return { stream: Readable.from(chunks(), { objectMode: false }), info: cloneInfo(info), range };
  }

  /** Removes the object; a missing key resolves. */
  async delete(key: string): Promise<void> {
    if (this.#objects.delete(key)) this.#index.remove(key);
  }

  /** Removes each key; missing ones count as deleted. */
  async deleteMany(keys: readonly string[]): Promise<number> {
    for (const key of keys) await this.delete(key);
    return keys.length;
  }

  /** Shares the immutable bytes; the copy gets a new lastModified. */
  async copy(from: string, to: string): Promise<ObjectInfo> {
    const source = this.#get(from);
    if (from === to) return cloneInfo(source.info);
    const info = { ...cloneInfo(source.info), key: to, lastModified: new Date() };
    this.#store(to, { data: source.data, info });
    return cloneInfo(info);
  }

  /** Pages through the byte-ordered index starting after the cursor. */
  async list(opts: DriverListOptions): Promise<ListPage> {
    const cursor = listStart(opts);
    const from = cursor && compareKeys(cursor.after, opts.prefix) > 0 ? cursor.after : opts.prefix;
    const start = this.#index.firstAtOrAfter(from);
    const objects = this.#objects;
    const keys = this.#index;
    async function* entries(): AsyncGenerator<ListEntry> {
      for (let i = start; i < keys.size; i++) {
        const key = keys.at(i);
        // Keys at or after the prefix that do not start with it sort after all that do.
        if (!key.startsWith(opts.prefix)) return;
        yield { key, load: async () => { const o = objects.get(key); return o ? cloneInfo(o.info) : undefined; } };
      }
    }
    return collectPage(entries(), { prefix: opts.prefix, delimiter: opts.delimiter, cursor, limit: opts.limit });
  }

  /** Keeps the session in this process (memory objects do not outlive it either). */
  override async createSession(record: SessionRecord): Promise<SessionRecord> {
    this.#sessions.set(record.id, { record: { ...record }, chunks: [] });
    return { ...record };
  }

  /** A copy of the session's record; E_NOT_FOUND when there is none. */
  override async getSession(id: string): Promise<SessionRecord> {
    return { ...this.#session(id).record };
  }

  /** Commits each piece as it arrives, so a failing body keeps what came before. */
  override async writeSession(id: string, body: SessionBody, opts: DriverSessionWriteOptions): Promise<SessionRecord> {
    const session = this.#session(id);
    if (session.record.offset !== opts.offset) throw offsetMismatch(id, opts.offset, session.record.offset);
    if (opts.size !== undefined) session.record.size = opts.size;
    const pending: Buffer[] = [];
    for (let done = false; !done; ) {
      const chunk = await body.next(READ_CHUNK);
      done = chunk.done;
      pending.push(Buffer.from(chunk.data));
      const checkpoint = body.checkpoint();
      if (checkpoint) {
        session.chunks.push(...pending.splice(0));
        session.record = { ...session.record, ...checkpoint };
      }
    }
    if (body.failure) throw body.failure;
    return { ...session.record };
  }

  /** Stores the session's bytes in one synchronous step, like `put`. */
  override async completeSession(id: string, opts: DriverSessionCompleteOptions): Promise<ObjectInfo> {
    const { record, chunks } = this.#session(id);
    checkWritePreconditions(record.key, this.#objects.get(record.key)?.info, opts);
    const data = Buffer.concat(chunks, record.offset);
    const info: ObjectInfo = {
      key: record.key,
      size: data.length,
      etag: etagFromSha256(opts.sha256),
      sha256: opts.sha256,
      contentType: record.contentType,
      lastModified: new Date(),
      metadata: { ...record.metadata },
      cacheControl: record.cacheControl,
      contentDisposition: record.contentDisposition,
    };
    this.#store(record.key, { data, info });
    this.#sessions.delete(id);
    return cloneInfo(info);
  }

  /** Forgets the session; a missing one resolves. */
  override async abortSession(id: string): Promise<void> {
    this.#sessions.delete(id);
  }

  /** The session's committed bytes, copied: later writes (there are none to a finished one) do not show. */
  override async readSession(id: string): Promise<Readable> {
    const { record, chunks } = this.#session(id);
    return Readable.from([Buffer.concat(chunks, record.offset)]);
  }

  /** The sessions whose key starts with `prefix`. */
  override async listSessions(prefix: string): Promise<SessionRecord[]> {
    return [...this.#sessions.values()].filter((s) => s.record.key.startsWith(prefix)).map((s) => ({ ...s.record }));
  }

  /** Keeps a copy of the bytes in this process. */
  override async putInternal(name: string, data: Uint8Array): Promise<void> {
    this.#internal.put(name, data);
  }

  override async readInternal(name: string): Promise<Uint8Array | undefined> {
    return this.#internal.read(name);
  }

  override async deleteInternal(names: readonly string[]): Promise<void> {
    this.#internal.delete(names);
  }

  override async listInternal(prefix: string, cursor?: string): Promise<InternalFilesPage> {
    return this.#internal.list(prefix, cursor);
  }

  #session(id: string): { record: SessionRecord; chunks: Buffer[] } {
    const session = this.#sessions.get(id);
    if (!session) throw sessionNotFound(id);
    return session;
  }

  /** Always healthy: reports the object count. */
  async check(): Promise<Record<string, unknown>> {
    return { objects: this.#objects.size };
  }
}
