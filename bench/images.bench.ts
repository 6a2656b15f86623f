/**
 * Image variants through the service against sharp alone, in one run:
 *
 * - First requests: thumbnails/s of `GET /api/objects/<key>?variant=thumb` for BENCH_IMAGES
 *   (40) distinct photos of BENCH_WIDTH x BENCH_HEIGHT (2400x1600) JPEG, against sharp
 *   alone making the same 200x200 cover JPEG (auto-orient, mozjpeg, as the service does)
 *   from the same files, with as many at a time on both sides. The goal's load is two per
 *   core (four here), the renders the service runs at once by default: a service's
 *   throughput is what it does with work waiting, not what one client waiting on each
 *   answer gets. One per core is measured too: there each thumbnail's own latency (the
 *   request, reading the original, the answer) leaves a core idle meanwhile. Each round
 *   asks for keys never asked before (copies of the photos), so nothing is stored or in
 *   memory yet. After a warm-up of both (20 x BENCH_IMAGES first requests on keys of their
 *   own; sharp alone at each load), BENCH_ROUNDS (3) rounds alternating who goes first; each ratio is
 *   the median of the rounds'. Goal: >= 0.85x at two per core.
 * - Cached: requests/s of one stored variant's URL against the same bytes stored as a
 *   plain object, with wrk (1 thread, 16 connections, BENCH_SECONDS (5) each after a 2 s
 *   warm-up), alternating, median of the rounds' ratios. Goal: >= 0.8x.
 * - The service's peak RSS growth while 200 first requests for 200 distinct keys arrive
 *   at once, and how many were served and how many refused (503) by the bounded queue.
 *
 * The service runs as `npm start` runs it (the compiled server, in its own process, with
 * the access log off), with the default variants (`thumb`) and the default queue.
 */
import { execFile, execFileSync } from 'node:child_process';
import { Agent, request } from 'node:http';
import { availableParallelism } from 'node:os';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import sharp from 'sharp';
import { createStorage } from '../src/index.js';
import { median, peakRssGrowth, pool, scratchWithRandomFile, startService, table, timed } from './lib.js';
import { ensureTool } from '../scripts/ensure-tool.mjs';
import { getAll } from './raw-client.js';

const count = Number(process.env.BENCH_IMAGES ?? 40);
const width = Number(process.env.BENCH_WIDTH ?? 2400);
const height = Number(process.env.BENCH_HEIGHT ?? 1600);
const rounds = Number(process.env.BENCH_ROUNDS ?? 3);
const seconds = Number(process.env.BENCH_SECONDS ?? 5);
const cores = availableParallelism();
/** Requests (and sharp calls) in flight: the goal's load first, then one per core. */
const loads = [2 * cores, cores];

ensureTool('wrk', 'wrk');

/** A photo-like JPEG: a gradient with noise, different for each `seed`, so no two renders are alike. */
async function photo(seed: number): Promise<Buffer> {
  const raw = Buffer.alloc(width * height * 3);
  for (let i = 0; i < raw.length; i += 3) {
    const x = (i / 3) % width;
    const y = Math.floor(i / 3 / width);
    raw[i] = (x + seed * 7) & 255;
    raw[i + 1] = (y + seed * 13) & 255;
    raw[i + 2] = ((x ^ y) + seed) & 255;
  }
  return sharp(raw, { raw: { width, height, channels: 3 } }).jpeg({ quality: 85 }).toBuffer();
}

const { dir } = scratchWithRandomFile('images', 1);
const root = join(dir, 'root');
const storage = createStorage({ driver: 'fs', root });
const keys: string[] = [];
for (let i = 0; i < count; i++) {
  const key = `photos/${i}.jpg`;
  await storage.put(key, await photo(i), { contentType: 'image/jpeg' });
  keys.push(key);
}
// Each round's first requests go to keys of their own (copies of the photos), so no
// rendition is in the service's memory yet; 200 more distinct keys for the burst.
const roundKeys = Array.from({ length: rounds * loads.length }, (_, round) => keys.map((_, i) => `round${round}/${i}.jpg`));
const burst = Array.from({ length: 200 }, (_, i) => `burst/${i}.jpg`);
// Keys of their own for a warm-up of both sides: measured per 400 first requests, the
// service's event loop took 2.4, 2.0, 1.4, 1.3, 1.2 and 1.0 ms of CPU per request as the
// JIT compiled its request path; sharp alone has little JavaScript to compile.
const warmUp = Array.from({ length: 20 * count }, (_, i) => `warm-up/${i}.jpg`);
for (const [i, key] of [...roundKeys.flat(), ...burst, ...warmUp].entries()) await storage.copy(keys[i % count] as string, key);

const { server, base } = await startService({ STORAGE_LOCAL_PATH: root, STOWAGE_ACCESS_LOG: 'false' });

// The first requests go through a lean client (raw-client.ts), which shares the two cores
// with the service; node:http (kept-alive) serves the few other requests.
const agent = new Agent({ keepAlive: true, maxSockets: 64 });
function get(path: string): Promise<{ status: number; type: string | undefined; body: Buffer }> {
  return new Promise((resolve, reject) => {
    request(`${base}${path}`, { agent }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, type: res.headers['content-type'], body: Buffer.concat(chunks) }));
      res.on('error', reject);
    }).on('error', reject).end();
  });
}

/** sharp alone: the same thumbnail from the same file, `inFlight` at a time. */
async function sharpAlone(inFlight: number): Promise<number> {
  return timed(() =>
    pool(keys, inFlight, async (key) => {
      const input = readFileSync(join(root, key));
      await sharp(input).autoOrient().resize({ width: 200, height: 200, fit: 'cover', withoutEnlargement: true }).jpeg({ mozjpeg: true }).toBuffer();
    }),
  );
}

/** First requests through the service for keys never asked before, `inFlight` at a time. */
async function serviceFirst(keys: string[], inFlight: number): Promise<number> {
  const paths = keys.map((key) => `/api/objects/${key}?variant=thumb`);
  return timed(() =>
    getAll(base, paths, inFlight, (path, res) => {
      if (res.status !== 200 || !res.head.includes('\r\ncontent-type: image/jpeg')) throw new Error(`${path}: ${res.status} ${res.body.toString()}`);
    }),
  );
}

const run = promisify(execFile);
async function wrk(url: string, duration: number): Promise<number> {
  const { stdout } = await run('wrk', ['-t1', '-c16', `-d${duration}s`, url]);
  if (/Non-2xx/.test(stdout)) throw new Error(`wrk saw errors for ${url}: ${stdout}`);
  return Number(/Requests\/sec:\s+([\d.]+)/.exec(stdout)?.[1] ?? 0);
}
const warmWrk = async (url: string) => (await wrk(url, 2), wrk(url, seconds));

try {
  await serviceFirst(warmUp, loads[0] as number);
  for (const inFlight of loads) await sharpAlone(inFlight);
  const first = loads.map((inFlight) => ({ inFlight, sharpRates: [] as number[], serviceRates: [] as number[], ratios: [] as number[] }));
  for (let round = 0; round < rounds; round++) {
    for (const [i, { inFlight, sharpRates, serviceRates, ratios }] of first.entries()) {
      const fresh = roundKeys[round * loads.length + i] as string[];
      const pair: [number[], () => Promise<number>][] = [[sharpRates, () => sharpAlone(inFlight)], [serviceRates, () => serviceFirst(fresh, inFlight)]];
      for (const [rates, measure] of round % 2 === 0 ? pair : pair.reverse()) rates.push(count / (await measure()));
      ratios.push((serviceRates.at(-1) ?? 0) / (sharpRates.at(-1) ?? 1));
    }
  }

  // The cached variant and the same bytes as a plain object.
  const thumb = (await get('/api/objects/photos/0.jpg?variant=thumb')).body;
  await storage.put('plain/thumb.jpg', thumb, { contentType: 'image/jpeg' });
  const plainRates: number[] = [];
  const cachedRates: number[] = [];
  const cachedRatios: number[] = [];
  for (let round = 0; round < rounds; round++) {
    const pair: [number[], string][] = [[plainRates, `${base}/api/objects/plain/thumb.jpg`], [cachedRates, `${base}/api/objects/photos/0.jpg?variant=thumb`]];
    for (const [rates, url] of round % 2 === 0 ? pair : pair.reverse()) rates.push(await warmWrk(url));
    cachedRatios.push((cachedRates.at(-1) ?? 0) / (plainRates.at(-1) ?? 1));
  }

  const statuses = new Map<number, number>();
  let burstSeconds = 0;
  const rss = await peakRssGrowth(server.pid as number, async () => {
    burstSeconds = await timed(() =>
      Promise.all(
        burst.map(async (key) => {
          const res = await get(`/api/objects/${key}?variant=thumb`);
          statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
        }),
      ),
    );
  });

  console.log(`\nImage variants: ${count} JPEGs of ${width}x${height}, thumb 200x200 cover JPEG, ${cores} cores, Node ${process.version}`);
  table([
    ['case', 'anchor', 'stowage', 'ratio (goal)'],
    ...first.map(({ inFlight, sharpRates, serviceRates, ratios }, i) => [
      `first request, ${inFlight} in flight, thumbs/s vs sharp alone (median of ${rounds})`,
      median(sharpRates).toFixed(1),
      median(serviceRates).toFixed(1),
      `${median(ratios).toFixed(2)}${i === 0 ? ' (>= 0.85)' : ''}`,
    ]),
    [`cached, req/s vs the same bytes as an object (wrk -c16, median of ${rounds})`, median(plainRates).toFixed(0), median(cachedRates).toFixed(0), `${median(cachedRatios).toFixed(2)} (>= 0.8)`],
  ]);
  for (const { inFlight, ratios } of first) console.log(`rounds, first request, ${inFlight} in flight: ${ratios.map((r) => r.toFixed(2)).join(' ')}`);
  console.log(`rounds, cached: ${cachedRatios.map((r) => r.toFixed(2)).join(' ')}`);
  const peak = Number(/VmHWM:\s+(\d+)/.exec(readFileSync(`/proc/${server.pid}/status`, 'utf8'))?.[1] ?? 0) * 1024;
  console.log(`200 concurrent first requests: ${[...statuses].map(([status, n]) => `${n} x ${status}`).join(', ')} in ${burstSeconds.toFixed(1)} s; the service's peak RSS ${(peak / 1e6).toFixed(0)} MB, ${(rss / 1e6).toFixed(1)} MB above its RSS before the burst`);
} finally {
  agent.destroy();
  server.kill('SIGTERM');
  await storage.close();
  execFileSync('rm', ['-rf', dir]);
}
