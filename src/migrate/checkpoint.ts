/**
 * The checkpoint of a migration: an append-only file of the objects already copied
 * (one JSON line each: key, size, digest), headed by a line naming the migration, so
 * a run that was killed continues where it stopped. A torn last line (a kill during
 * the append) is ignored: that object is simply checked again. A checkpoint of
 * another migration (other source, target or prefix) is refused rather than trusted.
 */
import { createWriteStream, type WriteStream } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { StorageError } from '../core/errors.js';

/** What one checkpoint line records about a copied object. */
export interface CheckpointEntry {
  size: number;
  sha256: string;
}

/** The migration a checkpoint belongs to. */
export interface CheckpointIdentity {
  from: string;
  to: string;
  prefix: string;
}

/** An open checkpoint: what earlier runs finished, and an appender for this run. */
export class Checkpoint {
  readonly #done: Map<string, CheckpointEntry>;
  readonly #out: WriteStream;

  private constructor(done: Map<string, CheckpointEntry>, out: WriteStream) {
    this.#done = done;
    this.#out = out;
  }

  /** Opens (or creates) the checkpoint at `path` for this migration. */
  static async open(path: string, identity: CheckpointIdentity): Promise<Checkpoint> {
    const done = new Map<string, CheckpointEntry>();
    let text: string | undefined;
    try {
      text = await readFile(path, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw new StorageError('E_INVALID_ARGUMENT', `cannot read the checkpoint ${path}: ${(err as Error).message}`, { cause: err });
    }
    const header = JSON.stringify({ migration: identity });
    if (text !== undefined && text !== '') {
      const [first, ...lines] = text.split('\n');
      if (first !== header) {
        throw new StorageError('E_INVALID_ARGUMENT', `the checkpoint ${path} belongs to another migration (${first?.slice(0, 200)}); use another --checkpoint file or delete it`);
      }
      for (const line of lines) {
        const entry = parseLine(line);
        if (entry) done.set(entry.key, { size: entry.size, sha256: entry.sha256 });
      }
    }
    const out = createWriteStream(path, { flags: 'a' });
    // A torn last line gets a newline of its own, so the next entry starts clean.
    if (text === undefined || text === '') out.write(`${header}\n`);
    else if (!text.endsWith('\n')) out.write('\n');
    return new Checkpoint(done, out);
  }

  /** True when an earlier run copied `key` with this size and digest. */
  has(key: string, size: number, sha256: string | undefined): boolean {
    const entry = this.#done.get(key);
    return entry !== undefined && sha256 !== undefined && entry.size === size && entry.sha256 === sha256;
  }

  /** Records a copied (or verified) object. */
  record(key: string, size: number, sha256: string): void {
    this.#done.set(key, { size, sha256 });
    this.#out.write(`${JSON.stringify({ key, size, sha256 })}\n`);
  }

  /** Flushes and closes the file. */
  async close(): Promise<void> {
    await new Promise<void>((resolve, reject) => this.#out.end((err?: Error | null) => (err ? reject(err) : resolve())));
  }
}

function parseLine(line: string): { key: string; size: number; sha256: string } | undefined {
  if (line === '') return undefined;
  try {
    const v = JSON.parse(line) as { key?: unknown; size?: unknown; sha256?: unknown };
    if (typeof v.key === 'string' && typeof v.size === 'number' && typeof v.sha256 === 'string') return { key: v.key, size: v.size, sha256: v.sha256 };
  } catch {
    // a torn line from a killed run
  }
  return undefined;
}
