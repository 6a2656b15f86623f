/**
 * The cost of resuming an interrupted upload, against Ceph RGW (started here unless
 * STOWAGE_TEST_S3_ENDPOINT is set), through a loopback proxy that counts the bytes sent:
 *
 * - anchor: a child process `putFile`s a 1 GiB file, uninterrupted;
 * - resumed: a child process `putFile`s it to another key and is SIGKILLed once the proxy
 *   has forwarded half the file; a second child runs the same `putFile` and resumes.
 *
 * The children run the compiled build (`npm run build`) with plain Node, as an app does:
 * run from the sources through tsx, each start-up would also pay for transpiling them,
 * which no user pays and which the resumed side pays twice.
 * Printed: total bytes sent over the file's size (goal <= 1.05) and total time over the
 * anchor's (goal <= 1.1), both children's start-up included on both sides.
 * STOWAGE_BENCH_RESUME_MIB changes the size (default 1024).
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createStorage, type CreateStorageOptions } from '../src/index.js';
import { randomFiles, spawnPutFiles, until } from '../test/chaos/kill-resume.js';
import { startFaultProxy } from '../test/drivers/s3/fault-proxy.js';
import { benchS3Server, table, timed } from './lib.js';

const sizeMib = Number(process.env.STOWAGE_BENCH_RESUME_MIB ?? 1024);
const bytes = sizeMib * 1024 * 1024;

const server = benchS3Server();
const { endpoint, accessKeyId, secretAccessKey } = server;
const bucket = `stowage-bench-resume-${Date.now().toString(36)}`;
const proxy = await startFaultProxy(endpoint);
const dir = mkdtempSync(join(tmpdir(), 'stowage-bench-resume-'));
execFileSync('npm', ['run', '--silent', 'build'], { cwd: new URL('..', import.meta.url).pathname, stdio: 'inherit' });
// The children run put-files-child.mjs over this build.
const compiled = new URL('../dist/index.js', import.meta.url).pathname;
const options: CreateStorageOptions = { driver: 's3', bucket, endpoint: proxy.url, accessKeyId, secretAccessKey, provider: 'ceph' };
const storage = createStorage({ driver: 's3', bucket, endpoint, accessKeyId, secretAccessKey, provider: 'ceph' });

/** Request-body bytes the proxy forwarded in PUTs to `key` (its object or its parts). */
const sentTo = (key: string) => proxy.seen.filter((r) => r.method === 'PUT' && r.path === `/${bucket}/${key}`).reduce((sum, r) => sum + r.forwardedBytes, 0);

/** Runs one child to the end and checks it stored the file. */
async function putInChild(key: string, path: string): Promise<{ resumedBytes: number }> {
  const run = spawnPutFiles({ storage: options, uploads: [{ key, path }] }, compiled);
  const exit = await run.exited;
  const line = run.lines[0];
  if (exit.code !== 0 || !line || 'error' in line) throw new Error(`the upload of ${key} failed: ${JSON.stringify({ exit, line })}`);
  return line;
}

try {
  await storage.verify({ createBucket: true });
  const [file] = randomFiles(dir, 1, bytes);
  if (!file) throw new Error('no file');

  const anchorSeconds = await timed(() => putInChild('anchor.bin', file.path));
  const anchorBytes = sentTo('anchor.bin');

  let resumedBytes = 0;
  const resumedSeconds = await timed(async () => {
    const first = spawnPutFiles({ storage: options, uploads: [{ key: 'resumed.bin', path: file.path }] }, compiled);
    if (!(await until(() => sentTo('resumed.bin') >= bytes / 2, first.exited))) throw new Error('the first upload ended before half the file was sent');
    first.child.kill('SIGKILL');
    await first.exited;
    resumedBytes = (await putInChild('resumed.bin', file.path)).resumedBytes;
  });
  const resumedTotal = sentTo('resumed.bin');
  for (const key of ['anchor.bin', 'resumed.bin']) {
    const info = await storage.stat(key);
    if (info.size !== bytes || info.sha256 !== file.sha256) throw new Error(`${key} was not stored whole`);
  }

  console.log(`\nResumed putFile to S3 (Ceph RGW on loopback, through a counting proxy), ${sizeMib} MiB file, killed at 50 %, Node ${process.version}`);
  table([
    ['case', 'seconds', 'bytes sent / file size', 'time / uninterrupted'],
    ['uninterrupted putFile (anchor)', anchorSeconds, anchorBytes / bytes, 1],
    ['killed at 50 %, then resumed', resumedSeconds, resumedTotal / bytes, resumedSeconds / anchorSeconds],
  ]);
  console.log(`resumed run: resumedBytes ${resumedBytes} (${((100 * resumedBytes) / bytes).toFixed(1)} % of the file); goals: bytes <= 1.05, time <= 1.1`);
  await storage.deleteMany(['anchor.bin', 'resumed.bin']);
  for (const upload of await storage.incompleteUploads()) await storage.abortUpload(upload);
} finally {
  rmSync(dir, { recursive: true, force: true });
  await storage.close();
  await proxy.close();
  server.stop();
}
