/**
 * What importing Stowage costs a program that only stores files on disk: a cold process
 * that imports the package (the compiled build, by its name, as an app does), puts one
 * small object with the fs driver and reads it back, against a bare Node process doing
 * the same with node:fs (write a temp file, rename it into place, read it). Also
 * `stowage --version` against `node -e 0`. Each case runs in fresh processes,
 * alternating with its anchor; the figure is the median of the per-round ratios.
 * Goals: time <= 1.3x and peak RSS <= +15 MB over the anchor; `--version` <= 1.5x.
 * BENCH_ROUNDS changes the number of rounds (default 15).
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { median, table } from './lib.js';

const repo = new URL('..', import.meta.url).pathname;
const rounds = Number(process.env.BENCH_ROUNDS ?? 15);

execFileSync('npm', ['run', '--silent', 'build'], { cwd: repo, stdio: 'inherit' });

// An app folder that depends on the package by name, as an installed app would.
const app = mkdtempSync(join(tmpdir(), 'stowage-import-bench-'));
mkdirSync(join(app, 'node_modules'));
symlinkSync(repo, join(app, 'node_modules', 'stowage'));
const store = join(app, 'store');
// Each program reports its own peak RSS, which the kernel keeps for the whole process.
const report = `process.stdout.write(String(process.resourceUsage().maxRSS * 1024));`;
writeFileSync(
  join(app, 'stowage.mjs'),
  `import { createStorage } from 'stowage';
const storage = createStorage({ driver: 'fs', root: ${JSON.stringify(store)} });
await storage.put('notes/a.txt', 'hello');
if ((await storage.get('notes/a.txt')).toString() !== 'hello') throw new Error('read back wrong');
${report}`,
);
writeFileSync(
  join(app, 'bare.mjs'),
  `import { mkdir, open, readFile, rename } from 'node:fs/promises';
const dir = ${JSON.stringify(join(store, 'bare'))};
await mkdir(dir, { recursive: true });
const handle = await open(dir + '/a.txt.tmp', 'w');
await handle.writeFile('hello');
await handle.sync();
await handle.close();
await rename(dir + '/a.txt.tmp', dir + '/a.txt');
if ((await readFile(dir + '/a.txt', 'utf8')) !== 'hello') throw new Error('read back wrong');
${report}`,
);

/** Runs a fresh Node process; returns its wall time in seconds and the peak RSS in bytes it reported (NaN if none). */
function run(args: string[]): { seconds: number; rss: number } {
  const started = process.hrtime.bigint();
  const result = spawnSync(process.execPath, args, { cwd: app, encoding: 'utf8' });
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  if (result.status !== 0) throw new Error(`node ${args.join(' ')} failed: ${result.stderr}`);
  return { seconds, rss: Number(result.stdout.trim().split('\n').at(-1)) };
}

/** Alternates a case with its anchor, `rounds` times after one warm-up each. */
function compare(subject: string[], anchor: string[]): { ratio: number; subject: number; anchor: number; rssGrowth: number } {
  run(subject);
  run(anchor);
  const ratios: number[] = [];
  const times: [number[], number[]] = [[], []];
  const rss: number[] = [];
  for (let i = 0; i < rounds; i++) {
    // Alternate which goes first, so a noisy moment hurts both alike.
    let s: { seconds: number; rss: number };
    let a: { seconds: number; rss: number };
    if (i % 2 === 0) {
      s = run(subject);
      a = run(anchor);
    } else {
      a = run(anchor);
      s = run(subject);
    }
    ratios.push(s.seconds / a.seconds);
    times[0].push(s.seconds);
    times[1].push(a.seconds);
    rss.push(s.rss - a.rss);
  }
  return { ratio: median(ratios), subject: median(times[0]), anchor: median(times[1]), rssGrowth: median(rss) };
}

try {
  const storage = compare([join(app, 'stowage.mjs')], [join(app, 'bare.mjs')]);
  // The CLI as npx runs it: its version needs no storage at all.
  const version = compare([join(repo, 'dist/cli/main.js'), '--version'], ['-e', '0']);
  console.log(`\nimporting Stowage, median of ${rounds} alternating rounds, Node ${process.version}`);
  table([
    ['case', 'median ms', 'anchor ms', 'ratio (goal)', 'peak RSS over the anchor MB (goal)'],
    ["import('stowage') + fs put + get vs node:fs", storage.subject * 1000, storage.anchor * 1000, `${storage.ratio.toFixed(2)} (<= 1.3)`, `${(storage.rssGrowth / 1e6).toFixed(1)} (<= 15)`],
    ['stowage --version vs node -e 0', version.subject * 1000, version.anchor * 1000, `${version.ratio.toFixed(2)} (<= 1.5)`, '-'],
  ]);
} finally {
  rmSync(app, { recursive: true, force: true });
}
