/** Helpers for the fs driver tests: temp roots and child processes. */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';

/** A fresh empty folder under the system temp dir. */
export function tempRoot(label: string): Promise<string> {
  return mkdtemp(join(tmpdir(), `stowage-${label}-`));
}

const CHILD = new URL('./fixtures/child.ts', import.meta.url).pathname;

/** Starts the fixture child; `lines` yields its parsed JSON output lines. */
export function startChild(args: string[]): { child: ChildProcess; lines: AsyncIterableIterator<Record<string, unknown>> } {
  const child = spawn(process.execPath, ['--import', 'tsx', CHILD, ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
  const rl = createInterface({ input: child.stdout as NodeJS.ReadableStream });
  async function* parse() {
    for await (const line of rl) if (line.trim().startsWith('{')) yield JSON.parse(line) as Record<string, unknown>;
  }
  return { child, lines: parse() };
}

/** Runs the fixture child to completion and returns its JSON lines. */
export async function runChild(args: string[]): Promise<Record<string, unknown>[]> {
  const { child, lines } = startChild(args);
  const out: Record<string, unknown>[] = [];
  for await (const line of lines) out.push(line);
  await new Promise((resolve) => (child.exitCode !== null ? resolve(null) : child.once('exit', resolve)));
  return out;
}
