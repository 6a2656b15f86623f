/**
 * Benchmark helpers: timing, peak RSS and ratio reporting. Figures are only
 * comparable within one run (the machine is shared), so every result is printed as a
 * ratio against an anchor measured in the same run.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { randomFillSync } from 'node:crypto';
import { closeSync, mkdirSync, openSync, readdirSync, readFileSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { ensureS3Server } from '../scripts/s3-server.mjs';
import { mapConcurrently } from '../src/core/concurrency.js';

/** Runs `fn` and returns its duration in seconds. */
export async function timed(fn: () => Promise<unknown>): Promise<number> {
  const start = process.hrtime.bigint();
  await fn();
  return Number(process.hrtime.bigint() - start) / 1e9;
}

function statusField(pid: number | 'self', field: 'VmHWM' | 'VmRSS'): number {
  const line = readFileSync(`/proc/${pid}/status`, 'utf8').split('\n').find((l) => l.startsWith(`${field}:`));
  return Number(/(\d+)/.exec(line ?? '')?.[1] ?? 0) * 1024;
}

/**
 * Runs `fn` and returns how far the peak RSS of process `pid` (this one by default)
 * rose above its RSS at the start, in bytes. The kernel's peak counter is reset first
 * (Linux clear_refs).
 */
export async function peakRssGrowth(pid: number | 'self', fn: () => Promise<unknown>): Promise<number> {
  if (pid === 'self') global.gc?.();
  writeFileSync(`/proc/${pid}/clear_refs`, '5');
  const before = statusField(pid, 'VmRSS');
  await fn();
  return statusField(pid, 'VmHWM') - before;
}

/**
 * CPU seconds (user + system, all threads) used so far by this process and by every
 * process whose command name is one of `servers` (e.g. `redis-server`, `radosgw`): on a
 * shared 2-core machine, where the throughput of a run comes and goes with other loads,
 * the CPU one unit of work takes is the steadier figure. Processes that ended are no
 * longer counted: take differences over spans in which the servers keep running.
 */
export function cpuSeconds(servers: readonly string[] = []): number {
  const own = process.cpuUsage();
  let total = (own.user + own.system) / 1e6;
  if (servers.length === 0) return total;
  const tick = 100; // USER_HZ, 100 on Linux everywhere
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    let stat: string;
    try {
      stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
    } catch {
      continue; // it ended meanwhile
    }
    // pid (comm) state ...: the command name may hold spaces, so split after its ')'.
    const comm = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
    if (!servers.includes(comm)) continue;
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    total += (Number(fields[11]) + Number(fields[12])) / tick;
  }
  return total;
}

/** Megabytes (10^6 bytes) per second. */
export function mbps(bytes: number, seconds: number): number {
  return bytes / 1e6 / seconds;
}

/** Prints rows as an aligned table. */
export function table(rows: (string | number)[][]): void {
  const cells = rows.map((r) => r.map((c) => (typeof c === 'number' ? c.toFixed(c >= 100 ? 0 : 2) : c)));
  const widths = cells[0]?.map((_, i) => Math.max(...cells.map((r) => r[i]?.length ?? 0))) ?? [];
  for (const row of cells) console.log(row.map((c, i) => c.padEnd(widths[i] ?? 0)).join('  '));
}

/** Runs `task` for every item with at most `concurrency` in flight. */
export async function pool<T>(items: T[], concurrency: number, task: (item: T) => Promise<unknown>): Promise<void> {
  await mapConcurrently(items, concurrency, task);
}

/** The median of some samples. */
export function median(samples: number[]): number {
  const sorted = [...samples].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? (sorted[mid] as number) : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
}

/**
 * Makes an empty scratch folder `.bench-tmp/<name>` and a file of `bytes` random bytes
 * in it (random, so no layer can compress or deduplicate it); returns both paths.
 */
export function scratchWithRandomFile(name: string, bytes: number): { dir: string; file: string } {
  const dir = join(process.cwd(), '.bench-tmp', name);
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  const file = join(dir, 'source.bin');
  const fd = openSync(file, 'w');
  const block = Buffer.alloc(8 * 1024 * 1024);
  for (let written = 0; written < bytes; written += block.length) writeSync(fd, randomFillSync(block), 0, Math.min(block.length, bytes - written));
  closeSync(fd);
  return { dir, file };
}

/** The RGW a benchmark talks to: the one named by STOWAGE_TEST_S3_*, or one started for the run. */
export function benchS3Server(): { endpoint: string; accessKeyId: string; secretAccessKey: string; stop: () => void } {
  const server = ensureS3Server();
  if (server.error) throw new Error(server.error);
  Object.assign(process.env, server.env);
  const { STOWAGE_TEST_S3_ENDPOINT: endpoint, STOWAGE_TEST_S3_ACCESS_KEY: accessKeyId, STOWAGE_TEST_S3_SECRET_KEY: secretAccessKey } = process.env;
  return { endpoint: endpoint as string, accessKeyId: accessKeyId as string, secretAccessKey: secretAccessKey as string, stop: () => server.stop() };
}

/**
 * The service as `npm start` runs it: built, then the compiled server in its own process,
 * on a free port, with `env` (and PATH) only. Resolves once it listens.
 */
export async function startService(env: Record<string, string>): Promise<{ server: ChildProcess; base: string }> {
  execFileSync('npm', ['run', '--silent', 'build'], { stdio: 'inherit' });
  const server = spawn(process.execPath, ['dist/http/server.js'], { env: { PATH: process.env.PATH, PORT: '0', ...env }, stdio: ['ignore', 'pipe', 'inherit'] });
  const base = await new Promise<string>((resolve, reject) => {
    let output = '';
    server.stdout?.on('data', (chunk: Buffer) => {
      output += chunk.toString();
      const address = /Stowage listening on (http:\/\/[\d.]+:\d+)/.exec(output)?.[1];
      if (address) resolve(address);
    });
    server.once('exit', (code) => reject(new Error(`the service exited with ${code}: ${output}`)));
  });
  return { server, base };
}
