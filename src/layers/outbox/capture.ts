/**
 * Keeping a write's bytes while the backend tries to store them. A write that fails
 * after its body was partly sent cannot be spooled from the caller's stream (those bytes
 * are gone), so every body passes through a {@link BodyCapture}: it hands the backend
 * each chunk as it arrives and keeps it: in memory while the outbox's memory budget
 * (`memoryBytes`, shared by all writes in progress) has room, else in a temp file at its
 * place in the body (a chunk kept in memory is not copied there while the backend may
 * still take the body). When the write succeeds the copy is dropped (the temp file is
 * never synced, so the page cache takes it and the unlink frees it); when it fails with a
 * temporary error the capture reads the rest of the body, writes the chunks it kept in
 * memory into their places, syncs the file and hands it to the outbox. The cost on a
 * healthy backend is keeping chunk references, and a page-cache write of only the chunks
 * the budget could not hold (bench/outbox.bench.ts measures it).
 */
import { open, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { DerivedBody, type BodySummary, type PutBody } from '../../core/body.js';
import { errorMessage, StorageError } from '../../core/errors.js';
import { newEntryId, removeFile } from './files.js';

/**
 * The bytes all captures of one outbox may keep in memory at once. Sharing one budget
 * keeps the usual case free of copies (a few large uploads at a time fit) while a burst
 * of them cannot take more memory than this.
 */
export class MemoryBudget {
  #available: number;

  constructor(bytes: number) {
    this.#available = bytes;
  }

  /** Takes `bytes` if there is room; false (taking nothing) if not. */
  take(bytes: number): boolean {
    if (bytes > this.#available) return false;
    this.#available -= bytes;
    return true;
  }

  /** Gives back what was taken. */
  give(bytes: number): void {
    this.#available += bytes;
  }
}

/** Temp-file writes a capture queues before it waits for them. */
const WRITES_IN_FLIGHT = 4;

/** A body the capture wrote to disk and synced, not yet in the spool. */
export interface CapturedFile extends BodySummary {
  /** The synced temp file. */
  path: string;
}

/**
 * The body the backend receives: the capture's chunks, and the caller's own checks
 * (`complete()` is the original body's, so a wrong SHA-256 still stops the commit).
 */
class CapturedBody extends DerivedBody {
  readonly #capture: BodyCapture;

  constructor(source: PutBody, capture: BodyCapture) {
    super(source);
    this.#capture = capture;
  }

  override async *[Symbol.asyncIterator](): AsyncIterator<Uint8Array> {
    for (;;) {
      const chunk = await this.#capture.pull();
      if (chunk === undefined) return;
      yield chunk;
    }
  }
}

/** A chunk kept in memory, and where it starts in the body. */
interface KeptChunk {
  position: number;
  bytes: Uint8Array;
}

/** Keeps the bytes of one write's body while the backend consumes it; see the module comment. */
export class BodyCapture {
  readonly #source: PutBody;
  readonly #chunks: AsyncIterator<Uint8Array>;
  readonly #tmpDir: string;
  readonly #budget: MemoryBudget;
  /** Bytes of the budget this capture holds: the kept chunks. */
  #held = 0;
  /**
   * The chunks that fit the budget. They are never copied to the temp file while the
   * backend may still take the body (only `toFile` writes them, at their positions): a
   * chunk past the budget goes to the file at its own position instead, so the file is
   * sparse until then, and a later chunk that fits again is kept again.
   */
  #kept: KeptChunk[] = [];
  #size = 0;
  #file: { path: string; handle: FileHandle } | undefined;
  /** The temp-file writes in progress, chained in order: the backend gets each chunk without waiting for its copy to reach the file. */
  #writing: Promise<void> = Promise.resolve();
  /** The writes queued and not finished, oldest first (each removes itself when done). */
  readonly #writesInFlight: Promise<void>[] = [];
  /** Set once the body is no longer wanted: queued writes are skipped. */
  #dropped = false;
  /** Why the temp file could not take the body: the backend's write goes on, but the body cannot be spooled. */
  #copyError: unknown;
  #done = false;
  /** Serializes pulls: whoever reads the body (the backend, then the spooler), every chunk is kept in order. */
  #pulling: Promise<unknown> = Promise.resolve();
  /** The error the caller's body itself failed with, if it did. */
  sourceError: unknown;

  constructor(source: PutBody, tmpDir: string, budget: MemoryBudget) {
    this.#source = source;
    this.#chunks = source[Symbol.asyncIterator]();
    this.#tmpDir = tmpDir;
    this.#budget = budget;
  }

  /** The body to give the backend. */
  body(): PutBody {
    return new CapturedBody(this.#source, this);
  }

  /** The next chunk of the caller's body (kept), or undefined at its end. */
  pull(): Promise<Uint8Array | undefined> {
    const next = this.#pulling.then(() => this.#pullNow());
    this.#pulling = next.catch(() => undefined);
    return next;
  }

  async #pullNow(): Promise<Uint8Array | undefined> {
    if (this.#done) return undefined;
    let step: IteratorResult<Uint8Array>;
    try {
      step = await this.#chunks.next();
    } catch (err) {
      this.sourceError = err;
      this.#done = true;
      throw err;
    }
    if (step.done) {
      this.#done = true;
      return undefined;
    }
    await this.#keep(step.value);
    return step.value;
  }

  async #keep(chunk: Uint8Array): Promise<void> {
    const position = this.#size;
    this.#size += chunk.byteLength;
    if (this.#budget.take(chunk.byteLength)) {
      this.#held += chunk.byteLength;
      this.#kept.push({ position, bytes: chunk });
      return;
    }
    return this.#write(chunk, position);
  }

  #giveBack(): void {
    this.#kept = [];
    this.#budget.give(this.#held);
    this.#held = 0;
  }

  /** The temp file, created on first use. */
  async #openFile(): Promise<FileHandle> {
    if (!this.#file) {
      const path = join(this.#tmpDir, `${newEntryId()}.body`);
      this.#file = { path, handle: await open(path, 'w') };
    }
    return this.#file.handle;
  }

  /**
   * Queues the write of `chunk` at `position` in the temp file. Only when
   * WRITES_IN_FLIGHT are already queued does it wait (for the oldest), so memory stays
   * bounded when the disk is slower than the backend.
   */
  async #write(chunk: Uint8Array, position: number): Promise<void> {
    const handle = await this.#openFile();
    const write = this.#writing.then(async () => {
      try {
        if (this.#copyError !== undefined || this.#dropped) return;
        for (let offset = 0; offset < chunk.byteLength; ) offset += (await handle.write(chunk, offset, chunk.byteLength - offset, position + offset)).bytesWritten;
      } catch (err) {
        this.#copyError = err;
      } finally {
        // The chain finishes writes in order: this one is the oldest.
        void this.#writesInFlight.shift();
      }
    });
    this.#writing = write;
    this.#writesInFlight.push(write);
    while (this.#writesInFlight.length > WRITES_IN_FLIGHT) await this.#writesInFlight[0];
  }

  /**
   * Reads the rest of the body and returns it as a synced temp file, with its digest
   * and size. `fits(size)` says whether the outbox may take that many bytes (and holds
   * them if so): a body past it is `full(size)`, found while reading (a huge body stops
   * there), and nothing is kept. The caller's own failures (its stream, `maxSize`,
   * `sha256`) reject as they are.
   */
  async toFile(fits: (size: number) => boolean, full: (size: number) => StorageError): Promise<CapturedFile> {
    try {
      if (!fits(this.#size)) throw full(this.#size);
      while ((await this.pull()) !== undefined) if (!fits(this.#size)) throw full(this.#size);
      const summary = this.#source.complete();
      const handle = await this.#openFile();
      for (const { position, bytes } of this.#kept) await this.#write(bytes, position);
      await this.#writing;
      // On disk now: the memory they held is for other captures again.
      this.#giveBack();
      if (this.#copyError !== undefined) throw new StorageError('E_UNAVAILABLE', `the outbox could not keep the body in ${this.#tmpDir}: ${errorMessage(this.#copyError)}`, { cause: this.#copyError });
      await handle.sync();
      await handle.close();
      const { path } = this.#file as { path: string };
      this.#file = undefined;
      return { ...summary, path };
    } catch (err) {
      await this.discard();
      throw err;
    }
  }

  /**
   * Drops what was kept (the write was stored, or refused): closes and removes the temp
   * file, and stops the caller's body if it was not read to its end (a refused upload's
   * request stream, which would otherwise wait for a reader forever).
   */
  async discard(): Promise<void> {
    this.#dropped = true;
    this.#giveBack();
    if (!this.#done) {
      this.#done = true;
      await this.#pulling;
      await this.#chunks.return?.().catch(() => undefined);
    }
    const file = this.#file;
    this.#file = undefined;
    if (!file) return;
    await this.#writing;
    await file.handle.close().catch(() => undefined);
    await removeFile(file.path);
  }
}
