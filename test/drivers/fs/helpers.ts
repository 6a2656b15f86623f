/** Helpers for the fs driver tests: temp roots and child processes. */
import { spawn, type ChildProcess } from 'node:child_process';
import { lstat, mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { after } from 'node:test';
import { FsDriver, type DriverReadOptions, type NotModified, type ObjectStream, type UnconditionalReadOptions } from '../../../src/index.js';

/** A fresh empty folder under the system temp dir. */
export function tempRoot(label: string): Promise<string> {
  return mkdtemp(join(tmpdir(), `stowage-${label}-`));
}

/** A maker of temp roots for one test file: every root it made is removed when the file's tests end. */
export function suiteRoots(): (label: string) => Promise<string> {
  const roots: string[] = [];
  after(async () => Promise.all(roots.map((r) => rm(r, { recursive: true, force: true }))));
  return async (label) => {
    const r = await tempRoot(label);
    roots.push(r);
    return r;
  };
}

const CHILD = 'child.ts';

/**
 * Starts a fixture (a file in ./fixtures, by default child.ts); `lines` yields its parsed
 * JSON output lines. With `stdin`, the child's stdin is a pipe the test may write to.
 */
export function startChild(args: string[], fixture = CHILD, opts: { stdin?: boolean } = {}): { child: ChildProcess; lines: AsyncIterableIterator<Record<string, unknown>> } {
  const path = new URL(`./fixtures/${fixture}`, import.meta.url).pathname;
  const child = spawn(process.execPath, ['--import', 'tsx', path, ...args], { stdio: [opts.stdin ? 'pipe' : 'ignore', 'pipe', 'inherit'] });
  const rl = createInterface({ input: child.stdout as NodeJS.ReadableStream });
  async function* parse() {
    for await (const line of rl) if (line.trim().startsWith('{')) yield JSON.parse(line) as Record<string, unknown>;
  }
  return { child, lines: parse() };
}

/** Runs a fixture (by default child.ts) to completion and returns its JSON lines. */
export async function runChild(args: string[], fixture = CHILD): Promise<Record<string, unknown>[]> {
  const { child, lines } = startChild(args, fixture);
  const out: Record<string, unknown>[] = [];
  for await (const line of lines) out.push(line);
  await new Promise((resolve) => (child.exitCode !== null ? resolve(null) : child.once('exit', resolve)));
  return out;
}

/**
 * Runs a fixture like {@link runChild}, but kills it after `deadlineMs` (a fixture
 * blocked for good, e.g. on a FIFO, must fail the test instead of hanging it).
 */
export async function runChildWithin(args: string[], fixture: string, deadlineMs: number): Promise<{ lines: Record<string, unknown>[]; killed: boolean }> {
  const { child, lines } = startChild(args, fixture);
  let killed = false;
  const timer = setTimeout(() => {
    killed = true;
    child.kill('SIGKILL');
  }, deadlineMs);
  const out: Record<string, unknown>[] = [];
  try {
    for await (const line of lines) out.push(line);
    await new Promise((resolve) => (child.exitCode !== null || child.signalCode !== null ? resolve(null) : child.once('exit', resolve)));
  } finally {
    clearTimeout(timer);
  }
  return { lines: out, killed };
}

/**
 * Every entry under `dir` (and `dir` itself) with its type, size, mode and mtime, in
 * path order: equal snapshots mean nothing was created, removed or changed there.
 */
export async function treeSnapshot(dir: string): Promise<string[]> {
  const rows: string[] = [];
  const visit = async (path: string, rel: string): Promise<void> => {
    const st = await lstat(path);
    const type = st.isDirectory() ? 'dir' : st.isFile() ? 'file' : st.isSymbolicLink() ? 'link' : 'other';
    rows.push(`${rel || '.'} ${type} ${st.size} ${st.mode.toString(8)} ${st.mtimeMs}`);
    if (st.isDirectory()) for (const name of (await readdir(path)).sort()) await visit(join(path, name), rel ? `${rel}/${name}` : name);
  };
  await visit(dir, '');
  return rows;
}

/** An fs driver that keeps what each of its reads gave, by key, for tests of what a caller asked of it. */
export class ObservedReads extends FsDriver {
  readonly reads: { key: string; result: ObjectStream | NotModified }[] = [];
  override read(key: string, opts: UnconditionalReadOptions): Promise<ObjectStream>;
  override read(key: string, opts: DriverReadOptions): Promise<ObjectStream | NotModified>;
  override async read(key: string, opts: DriverReadOptions): Promise<ObjectStream | NotModified> {
    const result = await super.read(key, opts);
    this.reads.push({ key, result });
    return result;
  }

  /** The content each read of keys matching `which` gave as `bytes` (undefined where it streamed). */
  bytesOf(which: (key: string) => boolean = () => true): (Buffer | undefined)[] {
    return this.reads.filter(({ key }) => which(key)).map(({ result }) => (result.notModified ? undefined : result.bytes));
  }
}
