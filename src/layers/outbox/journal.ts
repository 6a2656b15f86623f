/**
 * The outbox's journal: an append-only file of JSON lines, one per change of an entry
 * (queued, delivered, superseded, dead, retried). A queued write is acknowledged only
 * once its line is on disk (fsync), so the journal is the truth about what was accepted.
 *
 * Appends that arrive while a write is in progress are batched into the next write and
 * share its fsync (group commit): under a burst of queued writes the disk syncs once per
 * batch, not once per entry. A line cut off by a crash has no newline at its end and is
 * ignored on replay; replay then rewrites the journal with the live entries only, so the
 * next append never lands after a partial line.
 */
import { open, readFile, rename, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { errnoCode } from '../../drivers/fs/errors.js';
import type { ObjectAttributes } from '../../core/types.js';
import { syncDir } from '../../core/local-disk.js';

/** What the journal keeps about one queued write: enough to deliver it, and to serve it meanwhile. */
export interface EntryRecord {
  id: string;
  /** Orders entries across restarts: a later write of a key has a larger sequence number. */
  seq: number;
  key: string;
  size: number;
  sha256: string;
  /** ISO 8601. */
  queuedAt: string;
  /** The code of the failure that queued it. */
  reason: string;
  attributes: ObjectAttributes;
  /** The write's own condition, checked again at delivery. */
  ifNoneMatch?: '*';
  ifMatch?: string;
}

/** One line of the journal. */
export type JournalRecord =
  | { op: 'queued'; entry: EntryRecord }
  | { op: 'delivered'; id: string }
  | { op: 'superseded'; id: string }
  | { op: 'dead'; id: string; code: string };

/** What a replay found. */
export interface Replay {
  /** Entries queued and not yet delivered, superseded or dead, by id. */
  live: Map<string, EntryRecord>;
  /** Lines that could not be read (a crash cut them off, or they were damaged). */
  ignoredLines: number;
  /** The largest sequence number seen. */
  lastSeq: number;
}

const JOURNAL = 'journal.log';

/** Reads the journal of `dir` (missing: empty) without changing it. */
export async function readJournal(dir: string): Promise<Replay> {
  let text = '';
  try {
    text = await readFile(join(dir, JOURNAL), 'utf8');
  } catch (err) {
    if (errnoCode(err) !== 'ENOENT') throw err;
  }
  const live = new Map<string, EntryRecord>();
  let ignoredLines = 0;
  let lastSeq = 0;
  const lines = text.split('\n');
  // The last piece has no newline after it: empty, or a line a crash cut off.
  if (lines.pop() !== '') ignoredLines++;
  for (const line of lines) {
    const record = parseRecord(line);
    if (!record) {
      if (line !== '') ignoredLines++;
      continue;
    }
    if (record.op === 'queued') {
      live.set(record.entry.id, record.entry);
      lastSeq = Math.max(lastSeq, record.entry.seq);
    } else {
      live.delete(record.id);
    }
  }
  return { live, ignoredLines, lastSeq };
}

function parseRecord(line: string): JournalRecord | undefined {
  try {
    const record = JSON.parse(line) as Partial<JournalRecord> & { entry?: Partial<EntryRecord> };
    if (record.op === 'queued') {
      const e = record.entry;
      if (typeof e?.id !== 'string' || typeof e.key !== 'string' || typeof e.sha256 !== 'string' || typeof e.size !== 'number' || typeof e.seq !== 'number') return undefined;
      return record as JournalRecord;
    }
    if ((record.op === 'delivered' || record.op === 'superseded' || record.op === 'dead') && typeof record.id === 'string') return record as JournalRecord;
  } catch {
    // A damaged line: ignored like a cut-off one.
  }
  return undefined;
}

/** Lines past which the journal is rewritten once most of them are about entries that are gone. */
const COMPACT_AFTER_LINES = 10_000;

/**
 * The journal of one outbox folder, open for appending. It knows the live entries itself
 * (from the lines it wrote), so it can rewrite itself between two appends without asking
 * anyone: once it has more than COMPACT_AFTER_LINES lines and four times more lines than
 * live entries, it is rewritten with the live entries only, as on start.
 */
export class Journal {
  readonly #dir: string;
  #handle: FileHandle;
  readonly #live: Map<string, EntryRecord>;
  #lines: number;
  #waiting: { text: string; records: JournalRecord[]; done: (err?: Error) => void }[] = [];
  #flushing: Promise<void> | undefined;
  /** Set when the journal could not be reopened: every later append fails with it. */
  #broken: Error | undefined;

  private constructor(dir: string, handle: FileHandle, live: Map<string, EntryRecord>) {
    this.#dir = dir;
    this.#handle = handle;
    this.#live = live;
    this.#lines = live.size;
  }

  /**
   * Rewrites the journal of `dir` to hold the `live` entries only (a new file, synced,
   * renamed over the old one), then opens it for appending.
   */
  static async rewrite(dir: string, live: Iterable<EntryRecord>): Promise<Journal> {
    const entries = new Map([...live].map((entry) => [entry.id, entry]));
    return new Journal(dir, await writeLive(dir, entries.values()), entries);
  }

  /** The folder this journal belongs to. */
  get dir(): string {
    return this.#dir;
  }

  /** Appends the records and resolves once they are on disk. */
  append(...records: JournalRecord[]): Promise<void> {
    const text = records.map((r) => `${JSON.stringify(r)}\n`).join('');
    return new Promise((resolve, reject) => {
      this.#waiting.push({ text, records, done: (err) => (err === undefined ? resolve() : reject(err)) });
      this.#flushing ??= this.#flush();
    });
  }

  async #flush(): Promise<void> {
    while (this.#waiting.length > 0) {
      const batch = this.#waiting;
      this.#waiting = [];
      try {
        if (this.#broken) throw this.#broken;
        await this.#handle.appendFile(batch.map((w) => w.text).join(''));
        await this.#handle.datasync();
        for (const w of batch) for (const record of w.records) this.#apply(record);
        this.#lines += batch.reduce((n, w) => n + w.records.length, 0);
        for (const w of batch) w.done();
      } catch (err) {
        for (const w of batch) w.done(err as Error);
      }
      if (this.#lines > COMPACT_AFTER_LINES && this.#lines > 4 * this.#live.size) {
        // If even reopening the journal fails, the appends after it fail (nothing more is acknowledged).
        await this.#compact().catch((err: unknown) => (this.#broken = err as Error));
      }
    }
    this.#flushing = undefined;
  }

  #apply(record: JournalRecord): void {
    if (record.op === 'queued') this.#live.set(record.entry.id, record.entry);
    else this.#live.delete(record.id);
  }

  /**
   * Rewrites the journal with the live entries (between two batches, so no append is in
   * progress). When that fails, later appends go to whatever file is the journal now (the
   * old one, or the new one if the rename happened): never to a file renamed over.
   */
  async #compact(): Promise<void> {
    const old = this.#handle;
    try {
      this.#handle = await writeLive(this.#dir, this.#live.values());
      this.#lines = this.#live.size;
    } catch {
      this.#handle = await open(join(this.#dir, JOURNAL), 'a');
    }
    await old.close();
  }

  /** Waits for appends in progress, then closes the file. */
  async close(): Promise<void> {
    await this.#flushing;
    await this.#handle.close();
  }
}

/** Writes a journal of `live` as a new file, synced and renamed into place; returns it open for appending. */
async function writeLive(dir: string, live: Iterable<EntryRecord>): Promise<FileHandle> {
  const temp = join(dir, `${JOURNAL}.tmp`);
  const handle = await open(temp, 'w');
  try {
    await handle.writeFile([...live].map((entry) => `${JSON.stringify({ op: 'queued', entry } satisfies JournalRecord)}\n`).join(''));
    await handle.sync();
  } finally {
    await handle.close();
  }
  await rename(temp, join(dir, JOURNAL));
  await syncDir(dir);
  return open(join(dir, JOURNAL), 'a');
}
