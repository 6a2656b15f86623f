/**
 * Helpers of the kill-and-resume chaos test (R2) and the resume benchmark: random files
 * to upload, a child process running `putFile`s that the parent can SIGKILL, and a
 * watcher that keeps listing the target and checks every object it sees is whole.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash, randomFillSync } from 'node:crypto';
import { closeSync, openSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { createInterface } from 'node:readline';
import { setTimeout as sleep } from 'node:timers/promises';
import type { CreateStorageOptions, Storage } from '../../src/index.js';
import { collect } from '../conformance/harness.js';
import { sha256Hex } from './model.js';

/** A local file to upload, with what the stored object must be. */
export interface UploadFile {
  key: string;
  path: string;
  size: number;
  sha256: string;
}

/** Writes `count` files of `size` random bytes (random, so nothing can deduplicate them) into `dir`. */
export function randomFiles(dir: string, count: number, size: number): UploadFile[] {
  const block = Buffer.alloc(Math.min(size, 8 * 1024 * 1024));
  return Array.from({ length: count }, (_, i) => {
    const path = join(dir, `file-${i}.bin`);
    const fd = openSync(path, 'w');
    const hash = createHash('sha256');
    for (let written = 0; written < size; written += block.length) {
      const part = randomFillSync(block).subarray(0, Math.min(block.length, size - written));
      writeSync(fd, part);
      hash.update(part);
    }
    closeSync(fd);
    return { key: `upload-${String(i).padStart(3, '0')}.bin`, path, size, sha256: hash.digest('hex') };
  });
}

/** What put-files-child.mjs is given. */
export interface PutFilesJob {
  storage: CreateStorageOptions;
  uploads: { key: string; path: string }[];
}

/** One line of put-files-child.mjs's output per upload. */
export type PutFilesLine = { key: string; size: number; sha256?: string; resumedBytes: number } | { key: string; error: string };

/** A running child of put-files-child.mjs: its process, its lines so far, when it started and ended. */
export interface PutFilesRun {
  child: ChildProcess;
  lines: PutFilesLine[];
  started: Promise<void>;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/**
 * Starts a child (put-files-child.mjs) that runs the job's `putFile`s: over the sources
 * through tsx, or with `compiled` (the path of the build's index.js) by plain Node.
 */
export function spawnPutFiles(job: PutFilesJob, compiled?: string): PutFilesRun {
  const script = new URL('./put-files-child.mjs', import.meta.url).pathname;
  const args = compiled ? [script] : ['--import', 'tsx', script];
  const env = compiled ? { ...process.env, STOWAGE_CHILD_ENTRY: pathToFileURL(compiled).href } : process.env;
  const child = spawn(process.execPath, ['--no-warnings', ...args, JSON.stringify(job)], { stdio: ['ignore', 'pipe', 'inherit'], env });
  const lines: PutFilesLine[] = [];
  let markStarted!: () => void;
  const started = new Promise<void>((resolve) => (markStarted = resolve));
  createInterface({ input: child.stdout as NodeJS.ReadableStream }).on('line', (line) => {
    if (line === 'started') markStarted();
    else if (line.startsWith('{')) lines.push(JSON.parse(line) as PutFilesLine);
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
  void exited.then(markStarted);
  return { child, lines, started, exited };
}

/** Waits until `done()` holds or `stop` resolves first (then returns false); polls every `everyMs`. */
export async function until(done: () => boolean, stop: Promise<unknown>, everyMs = 10): Promise<boolean> {
  let stopped = false;
  void stop.then(() => (stopped = true));
  while (!done()) {
    if (stopped) return false;
    await sleep(everyMs);
  }
  return true;
}

/**
 * Lists `storage` again and again until stopped, and checks every object of `files` it
 * sees: the listed size must be the whole file's, and (read once per key) the stored
 * SHA-256 and the bytes must be the file's. Anything else is a partial object, recorded.
 */
export class VisibilityWatch {
  /** Objects seen that were not whole (wrong size or bytes), once per key and finding. */
  readonly partial: string[] = [];
  /** Objects seen whole but without their stored SHA-256 (not yet stamped), once per key. */
  readonly unstamped: string[] = [];
  polls = 0;
  /** Keys seen whole (and read back) so far. */
  readonly whole = new Set<string>();
  readonly #stopped: Promise<void>;
  #stop!: () => void;
  #loop: Promise<void> | undefined;

  constructor(
    readonly storage: Storage,
    readonly files: readonly UploadFile[],
  ) {
    this.#stopped = new Promise((resolve) => (this.#stop = resolve));
  }

  /** Starts watching. */
  start(): void {
    this.#loop = this.#run();
  }

  /** Stops after the poll in progress; resolves once it is done. */
  async stop(): Promise<void> {
    this.#stop();
    await this.#loop;
  }

  #record(list: string[], finding: string): void {
    if (!list.includes(finding)) list.push(finding);
  }

  async #run(): Promise<void> {
    let stopped = false;
    void this.#stopped.then(() => (stopped = true));
    const byKey = new Map(this.files.map((f) => [f.key, f]));
    while (!stopped) {
      for await (const info of this.storage.listAll({ details: false })) {
        const file = byKey.get(info.key);
        if (!file) continue;
        if (info.size !== file.size) {
          this.#record(this.partial, `${info.key}: listed with ${info.size} of ${file.size} bytes`);
          continue;
        }
        if (this.whole.has(info.key)) continue;
        const reader = await this.storage.getStream(info.key);
        const bytes = await collect(reader.stream);
        const hash = sha256Hex(bytes);
        if (hash !== file.sha256 || (reader.info.sha256 !== undefined && reader.info.sha256 !== file.sha256)) {
          this.#record(this.partial, `${info.key}: read ${bytes.length} bytes with SHA-256 ${hash}, stored SHA-256 ${reader.info.sha256 ?? 'missing'}; the file's is ${file.sha256}`);
        } else if (reader.info.sha256 === undefined) this.#record(this.unstamped, `${info.key}: whole, but visible without its stored SHA-256`);
        else this.whole.add(info.key);
      }
      this.polls++;
      await Promise.race([sleep(50), this.#stopped]);
    }
  }
}
