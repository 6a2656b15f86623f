/**
 * FIFOs, sockets and device nodes in the storage root are not objects: they read as
 * not found, are never listed, and never block. A FIFO opened on the event loop (the
 * default `sync` read I/O) would freeze the whole server until a writer appeared, and
 * in the thread pool (`async`) would hold a thread for good, so every path that opens
 * a file is tried against them in a separate process that the test kills if it hangs.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdir, rm, unlink } from 'node:fs/promises';
import { createServer, type Server } from 'node:net';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, describe, it } from 'node:test';
import { createStorage } from '../../../src/index.js';
import { runChildWithin, startChild, tempRoot } from './helpers.js';

const cleanups: (() => Promise<unknown>)[] = [];
after(async () => {
  for (const clean of cleanups.reverse()) await clean();
});

/** A root holding objects beside a FIFO at the top, one in a folder, a socket and (as root) a device node. */
async function rootWithSpecialFiles(label: string): Promise<{ dir: string; outsideFifo: string }> {
  const dir = await tempRoot(label);
  const outside = await tempRoot(`${label}-outside`);
  cleanups.push(() => rm(dir, { recursive: true, force: true }), () => rm(outside, { recursive: true, force: true }));
  const storage = createStorage({ driver: 'fs', root: dir });
  await storage.put('ok.txt', 'fine');
  await storage.put('with-fifo-sidecar.txt', 'meta');
  await storage.put('with-device-sidecar.txt', 'zero');
  await mkdir(join(dir, 'dir'));
  execFileSync('mkfifo', [join(dir, 'pipe'), join(dir, 'dir', 'pipe'), join(outside, 'fifo')]);
  // A FIFO planted where a sidecar belongs.
  await unlink(join(dir, '.stowage', 'meta', 'with-fifo-sidecar.txt'));
  execFileSync('mkfifo', [join(dir, '.stowage', 'meta', 'with-fifo-sidecar.txt')]);
  const socket: Server = createServer();
  await new Promise<void>((resolve) => socket.listen(join(dir, 'sock'), resolve));
  cleanups.push(() => new Promise((resolve) => socket.close(resolve)));
  try {
    execFileSync('mknod', [join(dir, 'dir', 'null'), 'c', '1', '3'], { stdio: 'ignore' }); // a /dev/null twin, when allowed
    // A /dev/zero twin as a sidecar: it reads forever.
    await unlink(join(dir, '.stowage', 'meta', 'with-device-sidecar.txt'));
    execFileSync('mknod', [join(dir, '.stowage', 'meta', 'with-device-sidecar.txt'), 'c', '1', '5'], { stdio: 'ignore' });
  } catch {
    // not root, or no CAP_MKNOD: the FIFOs and the socket still cover non-regular files
  }
  return { dir, outsideFifo: join(outside, 'fifo') };
}

for (const readIo of ['sync', 'async'] as const) {
  describe(`fs driver: non-regular files (${readIo} read I/O)`, () => {
    it('answers /health while a client GETs a FIFO, and serves it as not found', async () => {
      const { dir } = await rootWithSpecialFiles(`fifo-http-${readIo}`);
      const { child, lines } = startChild([dir, readIo], 'serve.ts');
      cleanups.push(async () => child.kill('SIGKILL'));
      const first = await lines.next();
      const base = `http://127.0.0.1:${(first.value as { port: number }).port}`;

      // Generous deadlines: a server that opened the FIFO never answers at all.
      const pipe = fetch(`${base}/api/objects/pipe`, { signal: AbortSignal.timeout(30_000) });
      pipe.catch(() => undefined); // awaited below; a failure there is reported then
      await sleep(300);
      const health = await fetch(`${base}/api/storage/health`, { signal: AbortSignal.timeout(20_000) });
      assert.equal(health.status, 200);
      const res = await pipe;
      assert.equal(res.status, 404);
      assert.equal(((await res.json()) as { error: { code: string } }).error.code, 'E_NOT_FOUND');
      for (const key of ['dir/pipe', 'sock', 'dir/null']) {
        assert.equal((await fetch(`${base}/api/objects/${key}`, { signal: AbortSignal.timeout(20_000) })).status, 404, key);
        assert.equal((await fetch(`${base}/api/objects/${key}`, { method: 'HEAD', signal: AbortSignal.timeout(20_000) })).status, 404, key);
      }
      const listing = (await (await fetch(`${base}/api/objects`, { signal: AbortSignal.timeout(20_000) })).json()) as { objects: { key: string }[] };
      assert.deepEqual(listing.objects.map((o) => o.key), ['ok.txt', 'with-device-sidecar.txt', 'with-fifo-sidecar.txt']);
      const ok = await fetch(`${base}/api/objects/ok.txt`, { signal: AbortSignal.timeout(20_000) });
      assert.equal(await ok.text(), 'fine');
    });

    it('reads, stats, lists, copies, moves and putFiles around FIFOs without blocking', async () => {
      const { dir, outsideFifo } = await rootWithSpecialFiles(`fifo-lib-${readIo}`);
      const { lines, killed } = await runChildWithin([dir, readIo, outsideFifo], 'special-files.ts', 60_000);
      const results = Object.fromEntries(lines.filter((l) => typeof l.step === 'string').map((l) => [l.step as string, l]));
      assert.ok(!killed && lines.at(-1)?.done === true, `the run blocked after: ${JSON.stringify(lines.at(-1) ?? 'its start')}`);
      const code = (step: string) => results[step]?.code;
      for (const step of ['get', 'getStream', 'get range', 'stat', 'get socket', 'get device', 'copy', 'move']) assert.equal(code(step), 'E_NOT_FOUND', step);
      assert.deepEqual(results.exists?.value, false);
      assert.deepEqual(results.list?.value, ['ok.txt', 'with-device-sidecar.txt', 'with-fifo-sidecar.txt'], 'FIFOs, sockets and devices are not listed');
      assert.deepEqual(results['list folders']?.value, [], 'a folder of FIFOs holds no objects');
      assert.deepEqual(results['sidecar fifo']?.value, { bytes: 'meta', sha256: null }, 'a FIFO sidecar reads as none');
      assert.deepEqual(results['sidecar device']?.value, { bytes: 'zero', sha256: null }, 'a device sidecar reads as none');
      assert.equal(code('putFile'), 'E_INVALID_ARGUMENT');
      assert.equal(code('driver putFile'), 'E_INVALID_ARGUMENT');
      assert.match(String(results['driver putFile']?.message), /not a regular file/);
      assert.deepEqual(results.put?.value, 17, 'a write over a FIFO replaces it');
      assert.equal((await createStorage({ driver: 'fs', root: dir }).get('pipe')).toString(), 'replaces the FIFO');
    });

    it('never serves a FIFO swapped in for a cached object', async () => {
      const dir = await tempRoot(`fifo-cache-${readIo}`);
      cleanups.push(() => rm(dir, { recursive: true, force: true }));
      await createStorage({ driver: 'fs', root: dir }).put('cached.txt', 'cached bytes');
      const { child, lines } = startChild([dir, readIo, '/nonexistent', 'cache-fill'], 'special-files.ts', { stdin: true });
      const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
      const seen: Record<string, unknown>[] = [];
      try {
        for await (const line of lines) {
          seen.push(line);
          if (line.filled === true) {
            await unlink(join(dir, 'cached.txt'));
            execFileSync('mkfifo', [join(dir, 'cached.txt')]);
            child.stdin?.end('go\n');
          }
        }
      } finally {
        clearTimeout(timer);
      }
      const byStep = Object.fromEntries(seen.filter((l) => typeof l.step === 'string').map((l) => [l.step as string, l]));
      assert.deepEqual(byStep['cached read']?.value, true, 'the object was cached before the swap');
      assert.equal(seen.at(-1)?.done, true, `the run blocked after: ${JSON.stringify(seen.at(-1))}`);
      assert.equal(byStep['get swapped']?.code, 'E_NOT_FOUND');
      assert.equal(byStep['stat swapped']?.code, 'E_NOT_FOUND');
    });
  });
}
