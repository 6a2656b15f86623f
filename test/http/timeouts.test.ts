/**
 * Clients that hold the service without finishing: a body that stops arriving (silent,
 * or one byte every few seconds), headers that never end, idle keep-alive connections,
 * and more connections than the cap, over real sockets on loopback and the fs backend.
 * A timed-out upload stores nothing and leaves no temp file and no descriptor; a slow
 * reader of a download is never cut by the body timeout. Timeouts are small (1-2 s) so
 * the tests stay short; only lower bounds the service guarantees are asserted tightly.
 */
import assert from 'node:assert/strict';
import { readdir, readlink, rm } from 'node:fs/promises';
import { request } from 'node:http';
import { connect, type Socket } from 'node:net';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import type { FastifyInstance } from 'fastify';
import { runServerWithin, startFsService } from './helpers.js';

const apps: FastifyInstance[] = [];
const dirs: string[] = [];
after(async () => {
  await Promise.all(apps.map((a) => a.close()));
  await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })));
});

async function start(opts: Parameters<typeof startFsService>[0]) {
  const service = await startFsService(opts);
  apps.push(service.app);
  dirs.push(service.root);
  return { ...service, port: Number(new URL(service.base).port) };
}

/** A raw connection, and what it received once the server closed it. */
function open(port: number): { socket: Socket; closed: Promise<{ text: string; at: number }> } {
  const socket = connect(port, '127.0.0.1');
  let text = '';
  socket.on('data', (chunk: Buffer) => (text += chunk.toString()));
  socket.on('error', () => undefined);
  const closed = new Promise<{ text: string; at: number }>((resolve) => socket.once('close', () => resolve({ text, at: Date.now() })));
  return { socket, closed };
}

/** Resolves with `promise`, or fails saying `what` after `ms` (a generous bound: the machine may be loaded). */
async function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_resolve, reject) => (timer = setTimeout(() => reject(new Error(`${what}: nothing after ${ms} ms`)), ms)));
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** The descriptors of this process (the server runs in it) that point into `dir`. */
async function descriptorsInto(dir: string): Promise<string[]> {
  const targets = await Promise.all((await readdir('/proc/self/fd')).map((fd) => readlink(join('/proc/self/fd', fd)).catch(() => '')));
  return targets.filter((t) => t.startsWith(dir));
}

/** Files in the fs driver's temp folders. */
async function tempFiles(root: string): Promise<string[]> {
  const tmp = join(root, '.stowage', 'tmp');
  const subs = await readdir(tmp).catch(() => []);
  return (await Promise.all(subs.map(async (s) => (await readdir(join(tmp, s)).catch(() => [])).map((f) => join(s, f))))).flat();
}

function putHead(port: number, key: string, length: number): string {
  return `PUT /api/objects/${key} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nContent-Type: application/octet-stream\r\nContent-Length: ${length}\r\n\r\n`;
}

describe('http timeouts', () => {
  it('answers a body that goes silent with 408, storing nothing and keeping no temp file or descriptor', async () => {
    const { port, root, storage } = await start({ bodyIdleTimeoutMs: 1000 });
    const { socket, closed } = open(port);
    socket.write(putHead(port, 'stalled/silent.bin', 1000) + 'x'.repeat(10));
    const sent = Date.now();
    // While it waits, the upload holds its temp file.
    await within(
      (async () => {
        while ((await tempFiles(root)).length === 0) await new Promise((r) => setTimeout(r, 20));
      })(),
      10_000,
      'temp file of the upload',
    );
    const { text, at } = await within(closed, 15_000, 'the stalled upload was never cut');
    assert.ok(at - sent >= 1000, `cut after ${at - sent} ms, before the timeout`);
    assert.match(text, /^HTTP\/1\.1 408 /);
    const body = JSON.parse(text.slice(text.indexOf('\r\n\r\n') + 4)) as { error: { code: string; message: string; requestId: string } };
    assert.equal(body.error.code, 'E_REQUEST_TIMEOUT');
    assert.ok(body.error.requestId.length > 0);
    assert.equal(await storage.exists('stalled/silent.bin'), false);
    // The temp file goes once storage has seen the failed body.
    await within(
      (async () => {
        while ((await tempFiles(root)).length > 0 || (await descriptorsInto(root)).length > 0) await new Promise((r) => setTimeout(r, 50));
      })(),
      10_000,
      'temp file and descriptors of the timed-out upload',
    );
  });

  it('cuts a client that drips one byte every few seconds, and lets one through that keeps sending', async () => {
    const { port, root, storage } = await start({ bodyIdleTimeoutMs: 1000 });
    const slow = open(port);
    slow.socket.write(putHead(port, 'stalled/drip.bin', 100));
    const started = Date.now();
    // Six bytes 300 ms apart (each one restarts the clock, 1.8 s in all), then one every 3 s.
    let dripped = 0;
    const drip = async () => {
      for (; !slow.socket.destroyed; dripped++) {
        slow.socket.write('x');
        await new Promise((r) => setTimeout(r, dripped < 6 ? 300 : 3000));
      }
    };
    void drip();
    const { text, at } = await within(slow.closed, 15_000, 'the dripping upload was never cut');
    assert.match(text, /^HTTP\/1\.1 408 /);
    assert.ok(dripped >= 6 && at - started >= 1800 + 1000, `cut after ${dripped} bytes and ${at - started} ms, while bytes still came`);
    assert.equal(await storage.exists('stalled/drip.bin'), false);

    // A byte every 100 ms never leaves the body idle for 1 s: 20 bytes over about 2 s.
    const steady = open(port);
    steady.socket.write(putHead(port, 'steady.bin', 20));
    let sent = 0;
    const feed = setInterval(() => {
      steady.socket.write('y');
      if (++sent === 20) clearInterval(feed);
    }, 100);
    const answered = await within(
      new Promise<string>((resolve) => {
        let text = '';
        steady.socket.on('data', (c: Buffer) => {
          text += c.toString();
          if (text.includes('\r\n\r\n')) resolve(text);
        });
      }),
      15_000,
      'the steady upload',
    );
    steady.socket.destroy();
    assert.match(answered, /^HTTP\/1\.1 201 /);
    assert.equal((await storage.get('steady.bin')).toString(), 'y'.repeat(20));
    await within(
      (async () => {
        while ((await tempFiles(root)).length > 0) await new Promise((r) => setTimeout(r, 50));
      })(),
      10_000,
      'temp files',
    );
  });

  it('times out stalled multipart uploads too (upload templates and signed forms), storing nothing', async () => {
    const { port, root, storage } = await start({ bodyIdleTimeoutMs: 1000 });
    const form = await storage.presignPost('stalled/form.bin');
    const boundary = 'stowage-boundary';
    const part = `--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="a.bin"\r\nContent-Type: application/octet-stream\r\n\r\n` + 'x'.repeat(50);
    for (const path of ['/api/uploads', new URL(form.url).pathname + new URL(form.url).search]) {
      const { socket, closed } = open(port);
      socket.write(`POST ${path} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nContent-Type: multipart/form-data; boundary=${boundary}\r\nContent-Length: 100000\r\n\r\n${part}`);
      const { text } = await within(closed, 15_000, `the stalled form to ${path} was never cut`);
      assert.match(text, /^HTTP\/1\.1 408 /, path);
    }
    assert.equal((await storage.usage()).objects, 0);
    await within(
      (async () => {
        while ((await tempFiles(root)).length > 0) await new Promise((r) => setTimeout(r, 50));
      })(),
      10_000,
      'temp files',
    );
  });

  it('never cuts a download to a reader slower than the body timeout', async () => {
    const { base, storage } = await start({ bodyIdleTimeoutMs: 500 });
    const data = Buffer.alloc(16 * 1024 * 1024, 7);
    await storage.put('big.bin', data);
    const received = await new Promise<number>((resolve, reject) => {
      request(`${base}/api/objects/big.bin`, (res) => {
        let bytes = 0;
        res.pause();
        // The socket's buffers fill and nothing moves for 2 s, four body timeouts.
        setTimeout(() => {
          res.on('data', (c: Buffer) => (bytes += c.length));
          res.on('end', () => resolve(bytes));
          res.on('error', reject);
          res.resume();
        }, 2000);
      })
        .on('error', reject)
        .end();
    });
    assert.equal(received, data.length);
  });

  it('answers headers that never finish with 408', async () => {
    const { port } = await start({ headersTimeoutMs: 1000 });
    const { socket, closed } = open(port);
    socket.write(`GET /health HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nX-Slow: `);
    const sent = Date.now();
    const { text, at } = await within(closed, 15_000, 'unfinished headers were never cut');
    assert.ok(at - sent >= 1000, `cut after ${at - sent} ms`);
    assert.match(text, /^HTTP\/1\.1 408 /);
  });

  it('closes idle keep-alive connections after the keep-alive timeout', async () => {
    const { port } = await start({ keepAliveTimeoutMs: 1000 });
    const { socket, closed } = open(port);
    socket.write(`GET /health HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\n\r\n`);
    const { text } = await within(closed, 15_000, 'the idle connection was never closed');
    assert.match(text, /^HTTP\/1\.1 200 /);
    assert.match(text, /keep-alive: timeout=1/i);
  });

  it('closes connections over the cap as they arrive', async () => {
    const { port } = await start({ maxConnections: 2 });
    const held = [open(port), open(port)];
    // Both are established and counted once each has had an answer.
    for (const h of held) {
      h.socket.write(`GET /health HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\n\r\n`);
      await within(new Promise((r) => h.socket.once('data', r)), 10_000, 'an answer');
    }
    const extra = open(port);
    extra.socket.write(`GET /health HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\n\r\n`);
    const { text } = await within(extra.closed, 10_000, 'the connection over the cap was never closed');
    assert.equal(text, '', 'no answer over the cap');
    held[0]?.socket.destroy();
    await held[0]?.closed;
    await new Promise((r) => setTimeout(r, 100));
    const res = await fetch(`http://127.0.0.1:${port}/health`);
    assert.equal(res.status, 200);
    for (const h of held) h.socket.destroy();
  });

  it('npm start reads the timeouts from the environment and refuses bad values naming the variable', async () => {
    for (const [name, value] of [['STOWAGE_BODY_TIMEOUT_MS', 'soon'], ['STOWAGE_HEADERS_TIMEOUT_MS', '0'], ['STOWAGE_KEEP_ALIVE_TIMEOUT_MS', '-5'], ['STOWAGE_MAX_CONNECTIONS', '1.5']] as const) {
      const bad = await runServerWithin({ PORT: '0', STORAGE_BACKEND: 'memory', [name]: value }, /$^/);
      assert.equal(bad.code, 1, bad.output);
      assert.match(bad.output, new RegExp(`${name} must be a whole number`), bad.output);
    }
    const { output, child } = await runServerWithin({ PORT: '0', STORAGE_BACKEND: 'memory', STOWAGE_BODY_TIMEOUT_MS: '1000' }, /Stowage listening on (http:\/\/127\.0\.0\.1:\d+)/);
    try {
      const port = Number(/127\.0\.0\.1:(\d+)/.exec(output)?.[1]);
      const { socket, closed } = open(port);
      socket.write(putHead(port, 'stalled.bin', 1000) + 'x'.repeat(10));
      const { text } = await within(closed, 15_000, 'the stalled upload was never cut');
      assert.match(text, /^HTTP\/1\.1 408 /);
    } finally {
      child.kill('SIGTERM');
    }
  });
});
