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
import { syncDir } from './files.js';

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

/** The journal of one outbox folder, open for appending. */
export class Journal {
  readonly #dir: string;
  readonly #handle: FileHandle;
  #waiting: { text: string; done: (err?: Error) => void }[] = [];
  #flushing: Promise<void> | undefined;

  private constructor(dir: string, handle: FileHandle) {
    this.#dir = dir;
    this.#handle = handle;
  }

  /**
   * Rewrites the journal of `dir` to hold the `live` entries only (a new file, synced,
   * renamed over the old one), then opens it for appending.
   */
  static async rewrite(dir: string, live: Iterable<EntryRecord>): Promise<Journal> {
    const temp = join(dir, `${JOURNAL}.tmp`);
    const handle = await open(temp, 'w');
    try {
      const text = [...live].map((entry) => `${JSON.stringify({ op: 'queued', entry } satisfies JournalRecord)}\n`).join('');
      await handle.writeFile(text);
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(temp, join(dir, JOURNAL));
    await syncDir(dir);
    return new Journal(dir, await open(join(dir, JOURNAL), 'a'));
  }

  /** The folder this journal belongs to. */
  get dir(): string {
    return this.#dir;
  }

  /** Appends the records and resolves once they are on disk. */
  append(...records: JournalRecord[]): Promise<void> {
    const text = records.map((r) => `${JSON.stringify(r)}\n`).join('');
    return new Promise((resolve, reject) => {
      this.#waiting.push({ text, done: (err) => (err === undefined ? resolve() : reject(err)) });
      this.#flushing ??= this.#flush();
    });
  }

  async #flush(): Promise<void> {
    while (this.#waiting.length > 0) {
      const batch = this.#waiting;
      this.#waiting = [];
      try {
        await this.#handle.appendFile(batch.map((w) => w.text).join(''));
        await this.#handle.datasync();
        for (const w of batch) w.done();
      } catch (err) {
        for (const w of batch) w.done(err as Error);
      }
    }
    this.#flushing = undefined;
  }

  /** Waits for appends in progress, then closes the file. */
  async close(): Promise<void> {
    await this.#flushing;
    await this.#handle.close();
  }
}
