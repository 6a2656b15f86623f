/**
 * The HTTP service against nginx (Debian's package, installed by apt-get when missing and
 * root) serving the same files from the same disk, in one run:
 *
 * - 1 KiB GET requests/s with wrk (1 thread, 16 connections, BENCH_SECONDS each, after
 *   an uncounted 2 s warm-up), BENCH_ROUNDS (5) rounds alternating which server goes
 *   first; the ratio is the median of the rounds' ratios. Goal: >= 0.5x nginx.
 * - A 1 GiB download with curl, median of BENCH_ROUNDS (5), alternating which server
 *   goes first. Goal: >= 0.8x nginx.
 * - A 1 GiB multipart upload through the service (POST /api/uploads) vs the fs driver's
 *   putFile alone, with the service process's peak RSS growth. Goal: RSS <= 64 MB.
 *
 * The service runs as `npm start` runs it (the compiled server, built first, in its own
 * process) with its per-request access log off, as nginx's is. nginx runs one worker,
 * like the service's one Node thread. BENCH_SIZE_MB changes the size.
 */
import { execFile, execFileSync, spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { createStorage } from '../src/index.js';
import { mbps, median, peakRssGrowth, scratchWithRandomFile, startService, table, timed } from './lib.js';
import { ensureTool } from '../scripts/ensure-tool.mjs';

const sizeMb = Number(process.env.BENCH_SIZE_MB ?? 1024);
const seconds = Number(process.env.BENCH_SECONDS ?? 10);
const rounds = Number(process.env.BENCH_ROUNDS ?? 5);
const bytes = sizeMb * 1024 * 1024;

ensureTool('nginx', 'nginx-light');
ensureTool('wrk', 'wrk');

const { dir, file } = scratchWithRandomFile('http', bytes);
const root = join(dir, 'root');
// A JPEG start-of-image marker up front, so the upload policy's magic-byte check accepts the file.
const upload = join(dir, 'upload.jpg');
writeFileSync(upload, Buffer.concat([Buffer.from([0xff, 0xd8, 0xff, 0xe0, 0, 16]), Buffer.from('JFIF\0')]));
execFileSync('sh', ['-c', `cat ${JSON.stringify(file)} >> ${JSON.stringify(upload)}`]);

const storage = createStorage({ driver: 'fs', root });
await storage.put('small.bin', Buffer.alloc(1024, 7));
await storage.putFile('big.bin', file);

const { server, base: stowage } = await startService({
  STORAGE_LOCAL_PATH: root,
  // nginx below runs with access_log off; so does the service.
  STOWAGE_ACCESS_LOG: 'false',
  STOWAGE_UPLOAD_POLICIES: JSON.stringify({ bench: { template: 'uploads/{uuid}.{ext}', maxSize: 2 * bytes, allowedTypes: ['image/jpeg'] } }),
});

const nginxPort = Number(new URL(stowage).port) + 1;
writeFileSync(
  join(dir, 'nginx.conf'),
  `worker_processes 1; daemon off; pid ${dir}/nginx.pid; error_log ${dir}/nginx-error.log;
   events { worker_connections 1024; }
   http { access_log off; sendfile on; tcp_nopush on; keepalive_requests 100000;
          server { listen 127.0.0.1:${nginxPort}; root ${root}; } }`,
);
const nginx = spawn('nginx', ['-c', join(dir, 'nginx.conf')], { stdio: 'inherit' });
await new Promise((r) => setTimeout(r, 500));
const nginxBase = `http://127.0.0.1:${nginxPort}`;

// Load tools run asynchronously: the service under test lives in this process's event loop.
const run = promisify(execFile);
async function wrk(url: string, duration = seconds): Promise<number> {
  const { stdout } = await run('wrk', ['-t1', '-c16', `-d${duration}s`, url]);
  return Number(/Requests\/sec:\s+([\d.]+)/.exec(stdout)?.[1] ?? 0);
}
/** Requests/s after a 2 s warm-up that is not counted (JIT compilation, caches, connections). */
async function warmWrk(url: string): Promise<number> {
  await wrk(url, 2);
  return wrk(url);
}
const curl = (args: string[]) => timed(() => run('curl', ['-sS', '-o', '/dev/null', ...args]));

try {
  // Both measurements swing between runs here (shared disk and cores): take the median of
  // several rounds, alternating who goes first. Small GETs: the median of each round's ratio.
  const nginxRates: number[] = [];
  const stowageRates: number[] = [];
  const smallRatios: number[] = [];
  for (let round = 0; round < rounds; round++) {
    const pair: [number[], string][] = [[nginxRates, `${nginxBase}/small.bin`], [stowageRates, `${stowage}/api/objects/small.bin`]];
    for (const [rates, url] of round % 2 === 0 ? pair : pair.reverse()) rates.push(await warmWrk(url));
    smallRatios.push((stowageRates.at(-1) ?? 0) / (nginxRates.at(-1) ?? 1));
  }
  const nginxTimes: number[] = [];
  const stowageTimes: number[] = [];
  for (let round = 0; round < rounds; round++) {
    const pair: [number[], string][] = [[nginxTimes, `${nginxBase}/big.bin`], [stowageTimes, `${stowage}/api/objects/big.bin`]];
    for (const [times, url] of round % 2 === 0 ? pair : pair.reverse()) times.push(await curl([url]));
  }
  const [bigNginx, bigStowage] = [median(nginxTimes), median(stowageTimes)];
  const direct = await timed(() => storage.putFile('direct.bin', upload));
  let uploadSeconds = 0;
  const rss = await peakRssGrowth(server.pid as number, async () => {
    uploadSeconds = await timed(async () => {
      const { stdout } = await run('curl', ['-sS', '-F', `file=@${upload};type=image/jpeg`, `${stowage}/api/uploads?template=bench`]);
      if (!stdout.includes('"files"')) throw new Error(`upload failed: ${stdout}`);
    });
  });
  console.log(`\nHTTP service vs nginx (1 worker), ${sizeMb} MiB objects, Node ${process.version}`);
  table([
    ['case', 'nginx', 'stowage', 'ratio (goal)'],
    [`1 KiB GET, req/s (wrk -c16, median of ${rounds})`, median(nginxRates), median(stowageRates), `${median(smallRatios).toFixed(2)} (>= 0.5)`],
    [`${sizeMb} MiB download, MB/s (median of ${rounds})`, mbps(bytes, bigNginx), mbps(bytes, bigStowage), `${(bigNginx / bigStowage).toFixed(2)} (>= 0.8)`],
  ]);
  table([
    ['upload', 'MB/s', 'ratio vs fs driver putFile'],
    ['fs driver putFile (anchor)', mbps(bytes, direct), 1],
    ['multipart POST /api/uploads', mbps(bytes, uploadSeconds), direct / uploadSeconds],
  ]);
  console.log(`peak RSS growth of the service during the upload: ${(rss / 1e6).toFixed(1)} MB (goal <= 64 MB)`);
} finally {
  nginx.kill();
  server.kill('SIGTERM');
  execFileSync('rm', ['-rf', dir]);
}
