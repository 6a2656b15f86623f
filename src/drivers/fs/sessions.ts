/**
 * Upload sessions of the filesystem driver, under `<root>/.stowage/sessions/`:
 *
 *   <id>.json    the record (offset, hash state, attributes), replaced by rename
 *   <id>.data    the bytes so far
 *   <id>.writer  the lease of the one process writing it now (host and pid)
 *
 * A write appends at the committed offset (over whatever a crashed write left past it,
 * which completion cuts off), fsyncs the data, then writes the record to a temp file, fsyncs it and
 * renames it over the old one, and fsyncs the folder. So a crash at any instant leaves a
 * record whose offset the data file holds, and any process can resume from it.
 * Completion hard-links the data into the driver's ordinary commit (temp file, sidecar,
 * renames under the key's lock), so a refused condition leaves the session as it was.
 */
import { randomUUID } from 'node:crypto';
import { link, mkdir, open, readdir, readFile, rename, rm, stat, writeFile, type FileHandle } from 'node:fs/promises';
import { hostname } from 'node:os';
import { Readable } from 'node:stream';
import { join } from 'node:path';
import { StorageError } from '../../core/errors.js';
import { offsetMismatch, sessionBusy, sessionNotFound, type DriverSessionWriteOptions, type SessionBody, type SessionRecord } from '../../core/sessions.js';
import type { DriverPutOptions } from '../../core/contract.js';
import type { ObjectInfo } from '../../core/types.js';
import { errnoCode, unlessErrno } from './errors.js';
import { processAlive, syncDir } from '../../core/local-disk.js';

/** How much a long write stores between two commits of its record. */
const COMMIT_EVERY_BYTES = 8 * 1024 * 1024;
/** The most bytes asked of the body at once. */
const READ_BYTES = 1024 * 1024;

/** Stores a finished session as an object: the driver's own write path, given a function that fills its temp file. */
export type StoreObject = (key: string, opts: DriverPutOptions, produce: (dataTemp: string) => Promise<string>) => Promise<ObjectInfo>;

/** The sessions folder of one root. */
export class FsSessions {
  readonly #dir: string;
  readonly #durable: boolean;
  /** Sessions this process is writing now, so a second writer here fails at once. */
  readonly #writing = new Set<string>();

  constructor(dir: string, durable: boolean) {
    this.#dir = dir;
    this.#durable = durable;
  }

  /** Creates the empty data file, then the record: a record never names missing data. */
  async create(record: SessionRecord): Promise<SessionRecord> {
    await mkdir(this.#dir, { recursive: true });
    const data = await open(this.#path(record.id, 'data'), 'wx');
    await data.close();
    await this.#commit(record);
    return record;
  }

  /** The committed record, checked against the data file. */
  async get(id: string): Promise<SessionRecord> {
    const record = await this.#read(id);
    const st = await stat(this.#path(id, 'data')).catch((err: unknown) => {
      if (errnoCode(err) === 'ENOENT') throw new StorageError('E_UNAVAILABLE', `session ${id} lost its data file`, { cause: err });
      throw err;
    });
    // A second link is the object it became: it completed, and only its removal was cut short.
    if (st.nlink > 1) {
      await this.#remove(id);
      throw sessionNotFound(id);
    }
    if (st.size < record.offset) throw new StorageError('E_UNAVAILABLE', `session ${id} records ${record.offset} bytes but its data file holds ${st.size}`);
    return record;
  }

  /** Appends the body at the committed offset, committing every few MiB and at the end (see the file's comment). */
  async write(id: string, body: SessionBody, opts: DriverSessionWriteOptions): Promise<SessionRecord> {
    return this.#asWriter(id, async () => {
      let record = await this.get(id);
      if (record.offset !== opts.offset) throw offsetMismatch(id, opts.offset, record.offset);
      if (opts.size !== undefined && record.size !== opts.size) record = await this.#commit({ ...record, size: opts.size });
      const data = await open(this.#path(id, 'data'), 'r+');
      try {
        let position = record.offset;
        let uncommitted = 0;
        for (let done = false; !done; ) {
          const chunk = await body.next(READ_BYTES);
          done = chunk.done;
          await writeAt(data, chunk.data, position);
          position += chunk.data.length;
          uncommitted += chunk.data.length;
          const checkpoint = uncommitted >= COMMIT_EVERY_BYTES || done ? body.checkpoint() : undefined;
          if (checkpoint && checkpoint.offset > record.offset) {
            if (this.#durable) await data.datasync();
            record = await this.#commit({ ...record, ...checkpoint });
            uncommitted = 0;
          }
        }
      } finally {
        await data.close();
      }
      if (body.failure) throw body.failure;
      return record;
    });
  }

  /** Stores the session's bytes at its key through `store`, then removes the session. */
  async complete(id: string, opts: { sha256: string; ifNoneMatch?: '*'; ifMatch?: string }, store: StoreObject): Promise<ObjectInfo> {
    return this.#asWriter(id, async () => {
      const record = await this.get(id);
      const dataPath = this.#path(id, 'data');
      const data = await open(dataPath, 'r+');
      await data.truncate(record.offset).finally(() => data.close());
      const { contentType, metadata, cacheControl, contentDisposition } = record;
      const info = await store(record.key, { contentType, metadata, cacheControl, contentDisposition, ifNoneMatch: opts.ifNoneMatch, ifMatch: opts.ifMatch }, async (dataTemp) => {
        await link(dataPath, dataTemp);
        return opts.sha256;
      });
      await this.#remove(id);
      return info;
    });
  }

  /**
   * The committed bytes of the data file (not what a crashed write left past them). The
   * file is opened before this resolves, so an abort while it is read does not cut it short.
   */
  async read(id: string): Promise<Readable> {
    const record = await this.get(id);
    const data = await open(this.#path(id, 'data'), 'r');
    if (record.offset === 0) {
      await data.close();
      return Readable.from([]);
    }
    return data.createReadStream({ start: 0, end: record.offset - 1, highWaterMark: READ_BYTES });
  }

  /** Removes the session's files; a missing session resolves. */
  async abort(id: string): Promise<void> {
    await this.#remove(id);
  }

  /** Every session's record whose key starts with `prefix`; records that cannot be read are skipped. */
  async list(prefix: string): Promise<SessionRecord[]> {
    const names = (await unlessErrno(readdir(this.#dir), 'ENOENT')) ?? [];
    const records = await Promise.all(names.filter((n) => n.endsWith('.json')).map((n) => this.#read(n.slice(0, -5)).catch(() => undefined)));
    return records.filter((r): r is SessionRecord => r !== undefined && r.key.startsWith(prefix));
  }

  #path(id: string, kind: 'json' | 'data' | 'writer'): string {
    return join(this.#dir, `${id}.${kind}`);
  }

  async #read(id: string): Promise<SessionRecord> {
    let text: string;
    try {
      text = await readFile(this.#path(id, 'json'), 'utf8');
    } catch (err) {
      if (errnoCode(err) === 'ENOENT') throw sessionNotFound(id, err);
      throw err;
    }
    const raw = JSON.parse(text) as SessionRecord & { createdAt: string; expiresAt: string };
    return { ...raw, createdAt: new Date(raw.createdAt), expiresAt: new Date(raw.expiresAt) };
  }

  /** Replaces the record: temp file, fsync, rename, fsync of the folder. */
  async #commit(record: SessionRecord): Promise<SessionRecord> {
    const temp = join(this.#dir, `.${record.id}.${randomUUID()}.tmp`);
    const file = await open(temp, 'wx');
    try {
      await file.writeFile(JSON.stringify(record));
      if (this.#durable) await file.sync();
    } finally {
      await file.close();
    }
    await rename(temp, this.#path(record.id, 'json'));
    if (this.#durable) await syncDir(this.#dir);
    return record;
  }

  /** Record first: once it is gone the session is gone, whatever else a crash leaves (list skips orphans). */
  async #remove(id: string): Promise<void> {
    await rm(this.#path(id, 'json'), { force: true });
    await Promise.all([rm(this.#path(id, 'data'), { force: true }), rm(this.#path(id, 'writer'), { force: true })]);
  }

  /**
   * Runs `fn` as the session's only writer: a lease file names this host and process, and
   * one left by a process that died (on this host) is taken over. A live writer elsewhere
   * makes this one fail with E_PRECONDITION_FAILED, as tus servers answer 423.
   */
  async #asWriter<T>(id: string, fn: () => Promise<T>): Promise<T> {
    if (this.#writing.has(id)) throw sessionBusy(id);
    this.#writing.add(id);
    const lease = this.#path(id, 'writer');
    try {
      await this.#read(id); // an unknown session is E_NOT_FOUND, not a lease
      await takeLease(lease, id);
      try {
        return await fn();
      } finally {
        await rm(lease, { force: true });
      }
    } finally {
      this.#writing.delete(id);
    }
  }
}

/**
 * Takes the lease: written whole to a temp file, then linked to its name (which fails if
 * it exists), so a lease never exists without its holder; an empty one is what a power
 * loss (or an older version, killed between create and write) left, and is taken over.
 */
async function takeLease(lease: string, id: string): Promise<void> {
  const temp = `${lease}.${randomUUID()}.tmp`;
  await writeFile(temp, `${hostname()} ${process.pid}`);
  try {
    for (let attempt = 0; attempt < 3; attempt++) {
      try {
        await link(temp, lease);
        return;
      } catch (err) {
        if (errnoCode(err) !== 'EEXIST') throw err;
      }
      const text = await readFile(lease, 'utf8').catch(() => undefined);
      if (text === undefined) continue; // released meanwhile
      const [host, pid] = text.split(' ');
      if (text !== '' && (host !== hostname() || processAlive(Number(pid)))) throw sessionBusy(id);
      await rm(lease, { force: true }); // its writer died: the committed record stands
    }
    throw sessionBusy(id);
  } finally {
    await rm(temp, { force: true });
  }
}

async function writeAt(handle: FileHandle, data: Buffer, position: number): Promise<void> {
  for (let done = 0; done < data.length; ) done += (await handle.write(data, done, data.length - done, position + done)).bytesWritten;
}
