/**
 * The outbox's entries on disk and in memory: queuing a captured body (in the durable
 * order: temp file synced, renamed into the spool, the spool folder synced, then the
 * journal line synced), superseding, delivering and dead-lettering entries, and the
 * recovery that brings a folder left by a killed process back to a consistent state.
 */
import { readdir, readFile, rename, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { StorageError } from '../../core/errors.js';
import { etagFromSha256 } from '../../core/objects.js';
import type { ObjectInfo, QueuedWrite } from '../../core/types.js';
import { errnoCode } from '../../drivers/fs/errors.js';
import type { CapturedFile } from './capture.js';
import { syncDir } from '../../core/local-disk.js';
import { isEntryId, outboxPaths, removeFile, writeFileDurably, type OutboxPaths } from './files.js';
import { Journal, readJournal, type EntryRecord } from './journal.js';

/** The steps of queuing a write, in order; a test hook may stop the process at any of them. */
export type SpoolStep = 'synced' | 'renamed' | 'dir-synced' | 'journaled';

/** A dead letter: the entry, and why its delivery failed for good. */
export interface DeadLetter {
  entry: EntryRecord;
  /** The error code of the failure (E_ACCESS_DENIED, E_BUCKET_NOT_FOUND, ...). */
  code: string;
  message: string;
  /** ISO 8601. */
  deadAt: string;
}

/** The info a queued entry is read as, until it is delivered. */
export function entryInfo(entry: EntryRecord): ObjectInfo {
  const { contentType, metadata, cacheControl, contentDisposition } = entry.attributes;
  return { key: entry.key, size: entry.size, etag: etagFromSha256(entry.sha256), sha256: entry.sha256, lastModified: new Date(entry.queuedAt), contentType, metadata: { ...metadata }, cacheControl, contentDisposition };
}

/** What a write of a queued entry resolves to. */
export function queuedWrite(entry: EntryRecord): QueuedWrite {
  return { status: 'queued', key: entry.key, id: entry.id, size: entry.size, sha256: entry.sha256, queuedAt: new Date(entry.queuedAt), reason: entry.reason };
}

/** The entries of one outbox folder, owned by this process. */
export class OutboxEntries {
  readonly paths: OutboxPaths;
  readonly #journal: Journal;
  readonly #pending = new Map<string, EntryRecord>();
  /** The pending entry of each key: a later write supersedes an earlier one, so there is at most one. */
  readonly #byKey = new Map<string, EntryRecord>();
  readonly #dead = new Map<string, DeadLetter>();
  /** The bytes of the dead letters, kept with the map: the disk cap reads it for every chunk spooled. */
  #deadBytes = 0;
  #seq: number;
  #pendingBytes = 0;
  /** Entries this process delivered (and verified). */
  deliveredCount = 0;
  /** Entries this process moved to dead/. */
  deadLetteredCount = 0;
  /** Bytes being spooled right now, counted against the cap before they are journaled. */
  #reserved = 0;

  private constructor(paths: OutboxPaths, journal: Journal, live: Iterable<EntryRecord>, dead: DeadLetter[], seq: number) {
    this.paths = paths;
    this.#journal = journal;
    this.#seq = seq;
    for (const entry of live) this.#add(entry);
    for (const letter of dead) this.#addDead(letter);
  }

  /**
   * Opens the folder (created if missing) after a clean stop or a crash: replays the
   * journal, moves a live entry whose body a crash left in dead/ back into the spool,
   * drops a live entry whose body is gone (logged through `warn`), removes temp files
   * and spool files no live entry names (never acknowledged, or already delivered), and
   * rewrites the journal with the live entries only.
   */
  static async open(dir: string, warn: (message: string) => void): Promise<OutboxEntries> {
    const paths = await outboxPaths(dir, true);
    const replay = await readJournal(dir);
    if (replay.ignoredLines > 0) warn(`outbox ${dir}: ignored ${replay.ignoredLines} unreadable journal line(s) (a write cut off by a crash is never acknowledged)`);
    const live: EntryRecord[] = [];
    for (const entry of [...replay.live.values()].sort((a, b) => a.seq - b.seq)) {
      const inSpool = join(paths.spool, entry.id);
      if (await exists(inSpool)) live.push(entry);
      else if (await exists(join(paths.dead, entry.id))) {
        await rename(join(paths.dead, entry.id), inSpool);
        await removeFile(join(paths.dead, `${entry.id}.json`));
        live.push(entry);
      } else warn(`outbox ${dir}: entry ${entry.id} (${JSON.stringify(entry.key)}) is in the journal but its body is gone; dropped`);
    }
    const liveIds = new Set(live.map((e) => e.id));
    for (const name of await readdir(paths.tmp)) await removeFile(join(paths.tmp, name));
    for (const name of await readdir(paths.spool)) if (!liveIds.has(name)) await removeFile(join(paths.spool, name));
    const dead = await readDeadLetters(paths, true);
    await syncDir(paths.spool);
    const journal = await Journal.rewrite(dir, live);
    return new OutboxEntries(paths, journal, live, dead, replay.lastSeq);
  }

  #add(entry: EntryRecord): void {
    const previous = this.#byKey.get(entry.key);
    if (previous) this.#forget(previous);
    this.#pending.set(entry.id, entry);
    this.#byKey.set(entry.key, entry);
    this.#pendingBytes += entry.size;
  }

  #forget(entry: EntryRecord): void {
    if (!this.#pending.delete(entry.id)) return;
    if (this.#byKey.get(entry.key) === entry) this.#byKey.delete(entry.key);
    this.#pendingBytes -= entry.size;
  }

  /** The pending entry of `key`, if one is queued. */
  queuedOf(key: string): EntryRecord | undefined {
    return this.#byKey.get(key);
  }

  /** True while the entry is pending (not delivered, superseded or dead). */
  isPending(id: string): boolean {
    return this.#pending.has(id);
  }

  /** The pending entries, oldest first. */
  pending(): EntryRecord[] {
    return [...this.#pending.values()];
  }

  /** The dead letters, oldest first. */
  deadLetters(): DeadLetter[] {
    return [...this.#dead.values()];
  }

  /** The path of a pending entry's body. */
  bodyPath(entry: EntryRecord): string {
    return join(this.paths.spool, entry.id);
  }

  /** Bytes on the outbox's disk: pending bodies, dead letters and bodies being spooled. */
  get usedBytes(): number {
    return this.#pendingBytes + this.#reserved + this.deadBytes;
  }

  get pendingBytes(): number {
    return this.#pendingBytes;
  }

  get deadBytes(): number {
    return this.#deadBytes;
  }

  #addDead(letter: DeadLetter): void {
    this.#dead.set(letter.entry.id, letter);
    this.#deadBytes += letter.entry.size;
  }


  /**
   * Queues a captured body as a new entry, superseding the key's pending entry (if any)
   * in the same journal write. `step` is told each durable step as it is done.
   */
  async queue(file: CapturedFile, fields: Omit<EntryRecord, 'seq' | 'size' | 'sha256'>, step: (s: SpoolStep) => Promise<void> | void): Promise<EntryRecord> {
    const entry: EntryRecord = { ...fields, seq: ++this.#seq, size: file.size, sha256: file.sha256 };
    const previous = this.#byKey.get(entry.key);
    try {
      await step('synced');
      await rename(file.path, this.bodyPath(entry));
      await step('renamed');
      await syncDir(this.paths.spool);
      await step('dir-synced');
      await this.#journal.append({ op: 'queued', entry }, ...(previous ? [{ op: 'superseded' as const, id: previous.id }] : []));
    } catch (err) {
      // Not acknowledged: nothing of it may stay (a restart would remove it too).
      await Promise.all([removeFile(file.path), removeFile(this.bodyPath(entry))]).catch(() => undefined);
      throw err;
    }
    await step('journaled');
    this.#add(entry);
    if (previous) await removeFile(this.bodyPath(previous));
    return entry;
  }

  /** Counts `bytes` (negative to give them back) of a body being spooled against the cap, before it is an entry. */
  reserve(bytes: number): void {
    this.#reserved += bytes;
  }

  /** Drops a pending entry that a later write or delete of its key replaced. */
  async supersede(entry: EntryRecord): Promise<void> {
    if (!this.isPending(entry.id)) return;
    await this.#journal.append({ op: 'superseded', id: entry.id });
    this.#forget(entry);
    await removeFile(this.bodyPath(entry));
  }

  /** Removes a delivered entry: its journal line first, then its body. */
  async delivered(entry: EntryRecord): Promise<void> {
    await this.#journal.append({ op: 'delivered', id: entry.id });
    await removeFile(this.bodyPath(entry));
    // Counted as it stops being pending, so a status never sees one without the other.
    this.#forget(entry);
    this.deliveredCount++;
  }

  /**
   * Moves an entry to dead/ with why (the reason file first, then the body, then the
   * journal line), never deleting it; `stowage outbox retry` brings it back.
   */
  async kill(entry: EntryRecord, code: string, message: string): Promise<DeadLetter> {
    const letter: DeadLetter = { entry, code, message, deadAt: new Date().toISOString() };
    await writeFileDurably(join(this.paths.dead, `${entry.id}.json`), this.paths.dead, `${JSON.stringify(letter, null, 2)}\n`);
    await rename(this.bodyPath(entry), join(this.paths.dead, entry.id));
    await syncDir(this.paths.dead);
    await this.#journal.append({ op: 'dead', id: entry.id, code });
    this.#forget(entry);
    this.#addDead(letter);
    this.deadLetteredCount++;
    return letter;
  }

  /**
   * Queues a dead letter again (the journal line first, then the body back into the
   * spool, then its reason file removed). A dead letter of a key that has a newer
   * pending entry stays dead: delivering it would overwrite the newer write. Returns the
   * entry, or undefined when it stayed.
   */
  async revive(id: string): Promise<EntryRecord | undefined> {
    const letter = this.#dead.get(id);
    if (!letter) throw new StorageError('E_NOT_FOUND', `no dead letter ${JSON.stringify(id)} in the outbox at ${this.paths.dir}`);
    const newer = this.#byKey.get(letter.entry.key);
    if (newer && newer.seq > letter.entry.seq) return undefined;
    const entry: EntryRecord = { ...letter.entry, seq: ++this.#seq };
    await this.#journal.append({ op: 'queued', entry });
    await rename(join(this.paths.dead, id), this.bodyPath(entry));
    await syncDir(this.paths.spool);
    await removeFile(join(this.paths.dead, `${id}.json`));
    this.#dead.delete(id);
    this.#deadBytes -= letter.entry.size;
    this.#add(entry);
    return entry;
  }

  /** Waits for journal writes in progress, then closes the journal. */
  close(): Promise<void> {
    return this.#journal.close();
  }
}

async function exists(path: string): Promise<boolean> {
  return stat(path).then(
    () => true,
    (err: unknown) => {
      if (errnoCode(err) === 'ENOENT') return false;
      throw err;
    },
  );
}

/**
 * The dead letters of an outbox folder, oldest first: each reason file whose body is
 * there. With `clean`, a reason file without its body (a revive cut off by a crash,
 * whose body is back in the spool) is removed.
 */
export async function readDeadLetters(paths: OutboxPaths, clean: boolean): Promise<DeadLetter[]> {
  const names = new Set(
    await readdir(paths.dead).catch((err: unknown) => {
      if (errnoCode(err) === 'ENOENT') return [];
      throw err;
    }),
  );
  const letters: DeadLetter[] = [];
  for (const name of [...names].sort()) {
    const id = name.replace(/\.json$/, '');
    if (clean && name.endsWith('.tmp')) await removeFile(join(paths.dead, name));
    if (id === name || !isEntryId(id)) continue;
    if (!names.has(id)) {
      if (clean) await removeFile(join(paths.dead, name));
      continue;
    }
    try {
      letters.push(JSON.parse(await readFile(join(paths.dead, name), 'utf8')) as DeadLetter);
    } catch {
      // A reason file cut off by a crash: its entry is still live in the journal (the
      // dead line comes last), so the next start moves the body back into the spool.
    }
  }
  return letters;
}
