/**
 * The HTTP service over real HTTP on loopback, on the fs backend: uploads and downloads,
 * ranges and 304s, listings, presigned round trips with plain fetch, signed links, the
 * key-decoding and bad-input matrix, and clients that disconnect mid-upload.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readdir, readlink, rm, writeFile } from 'node:fs/promises';
import { Agent, request as httpRequest } from 'node:http';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { FastifyInstance } from 'fastify';
import { Readable } from 'node:stream';
import { buildApp, createStorage, MemoryDriver, Storage, StorageError, type GetOptions, type ObjectStream } from '../../src/index.js';
import { KEY_ATTACKS, rawRequest } from './helpers.js';

const SECRET = 'http-test-signing-secret-0123456789';
let app: FastifyInstance;
let base: string;
let root: string;
let storage: Storage;

async function start(opts: { maxUploadSize?: number; root?: string } = {}): Promise<{ app: FastifyInstance; base: string; storage: Storage }> {
  const dir = opts.root ?? (await mkdtemp(join(tmpdir(), 'stowage-http-')));
  const s = createStorage({ driver: 'fs', root: dir, baseUrl: 'http://placeholder.invalid', signingSecret: SECRET });
  const a = await buildApp({ storage: s, signingSecret: SECRET, logger: false, maxUploadSize: opts.maxUploadSize });
  const address = await a.listen({ host: '127.0.0.1', port: 0 });
  // Signed links must point at this server: rebuild the storage with the real base URL.
  const real = createStorage({ driver: 'fs', root: dir, baseUrl: address, signingSecret: SECRET });
  await a.close();
  const b = await buildApp({ storage: real, signingSecret: SECRET, logger: false, maxUploadSize: opts.maxUploadSize });
  const url = await b.listen({ host: '127.0.0.1', port: Number(new URL(address).port) });
  return { app: b, base: url, storage: real };
}

before(async () => {
  root = await mkdtemp(join(tmpdir(), 'stowage-http-'));
  ({ app, base, storage } = await start({ root }));
});
after(async () => {
  await app.close();
  await rm(root, { recursive: true, force: true });
});

const url = (path: string) => `${base}${path}`;
async function errorCode(res: Response): Promise<string> {
  const body = (await res.json()) as { error: { code: string; message: string; requestId: string } };
  assert.ok(body.error.requestId.length > 0);
  return body.error.code;
}

describe('http: objects', () => {
  it('stores a raw PUT body and serves it back with its headers', async () => {
    const data = randomBytes(100_000);
    const put = await fetch(url('/api/objects/users/42/%D1%84%D0%BE%D1%82%D0%BE%201.jpg'), { method: 'PUT', body: data, headers: { 'content-type': 'image/jpeg' } });
    assert.equal(put.status, 201);
    const info = (await put.json()) as { key: string; size: number; sha256: string; etag: string };
    assert.equal(info.key, 'users/42/фото 1.jpg');
    assert.equal(info.size, data.length);
    const get = await fetch(url('/api/objects/users/42/%D1%84%D0%BE%D1%82%D0%BE%201.jpg'));
    assert.equal(get.status, 200);
    assert.equal(get.headers.get('content-type'), 'image/jpeg');
    assert.equal(get.headers.get('etag'), `"${info.etag}"`);
    assert.ok(get.headers.get('last-modified'));
    assert.deepEqual(Buffer.from(await get.arrayBuffer()), data);
  });

  it('answers ranges with 206, suffixes too, and unsatisfiable ones with 416', async () => {
    await fetch(url('/api/objects/r.txt'), { method: 'PUT', body: '0123456789' });
    const first = await fetch(url('/api/objects/r.txt'), { headers: { range: 'bytes=2-4' } });
    assert.equal(first.status, 206);
    assert.equal(first.headers.get('content-range'), 'bytes 2-4/10');
    assert.equal(await first.text(), '234');
    const suffix = await fetch(url('/api/objects/r.txt'), { headers: { range: 'bytes=-3' } });
    assert.equal(await suffix.text(), '789');
    const bad = await fetch(url('/api/objects/r.txt'), { headers: { range: 'bytes=50-60' } });
    assert.equal(bad.status, 416);
    assert.equal(bad.headers.get('content-range'), 'bytes */10');
    assert.equal(await errorCode(bad), 'E_RANGE_NOT_SATISFIABLE');
    const ignored = await fetch(url('/api/objects/r.txt'), { headers: { range: 'bytes=0-1,4-5' } });
    assert.equal(ignored.status, 200, 'several ranges: the whole object');
  });

  it('streams large objects whole and by range to slow readers, and closes the file when the client goes away', async () => {
    const data = randomBytes(24 * 1024 * 1024 + 123);
    assert.equal((await fetch(url('/api/objects/large.bin'), { method: 'PUT', body: data })).status, 201);
    assert.deepEqual(Buffer.from(await (await fetch(url('/api/objects/large.bin'))).arrayBuffer()), data);
    const range = await fetch(url('/api/objects/large.bin'), { headers: { range: 'bytes=1000000-3999999' } });
    assert.equal(range.status, 206);
    assert.equal(range.headers.get('content-length'), '3000000');
    assert.deepEqual(Buffer.from(await range.arrayBuffer()), data.subarray(1_000_000, 4_000_000));

    // A reader that stalls fills the socket: later chunks wait in Node's queue, and none
    // may be overwritten by a later read before it went out.
    const slow = await new Promise<Buffer>((resolve, reject) => {
      httpRequest(url('/api/objects/large.bin'), (res) => {
        const chunks: Buffer[] = [];
        const stall = (ms: number) => {
          res.pause();
          setTimeout(() => res.resume(), ms);
        };
        stall(300);
        res.on('data', (c: Buffer) => {
          if (chunks.push(c) % 64 === 0) stall(20);
        });
        res.on('end', () => resolve(Buffer.concat(chunks)));
        res.on('error', reject);
      }).end();
    });
    assert.deepEqual(slow, data);

    // A client that reads a little and leaves: the service closes the object's file.
    const dataFile = join(root, 'large.bin');
    const openHere = async () => {
      let count = 0;
      for (const fd of await readdir('/proc/self/fd')) count += (await readlink(`/proc/self/fd/${fd}`).catch(() => '')) === dataFile ? 1 : 0;
      return count;
    };
    await new Promise<void>((resolve) => {
      const req = httpRequest(url('/api/objects/large.bin'), (res) => {
        res.once('data', () => {
          req.destroy();
          resolve();
        });
      });
      req.on('error', () => undefined);
      req.end();
    });
    for (let i = 0; i < 50 && (await openHere()) > 0; i++) await new Promise((r) => setTimeout(r, 20));
    assert.equal(await openHere(), 0, 'no descriptor of the object is left open');
    assert.equal((await fetch(url('/health'))).status, 200);
  });

  it('answers a backend that fails before the first byte with an error, and cuts one that fails later', async () => {
    /** Memory storage whose large reads fail: at once, or after the first chunk. */
    class FailingReads extends MemoryDriver {
      override async read(key: string, opts: GetOptions): Promise<ObjectStream> {
        const object = await super.read(key, opts);
        const failure = new StorageError('E_UNAVAILABLE', 'the disk went away');
        async function* chunks() {
          if (key === 'late.bin') yield Buffer.alloc(256 * 1024, 1);
          throw failure;
        }
        return { ...object, stream: Readable.from(chunks()) };
      }
    }
    const failing = new Storage(new FailingReads());
    await failing.put('early.bin', Buffer.alloc(1024 * 1024));
    await failing.put('late.bin', Buffer.alloc(1024 * 1024));
    const logged: string[] = [];
    const broken = await buildApp({ storage: failing, logger: { level: 'error', stream: { write: (line: string) => logged.push(line) } } });
    try {
      const address = await broken.listen({ host: '127.0.0.1', port: 0 });
      const early = await fetch(`${address}/api/objects/early.bin`);
      assert.equal(early.status, 503);
      assert.equal(await errorCode(early), 'E_UNAVAILABLE');
      const late = await fetch(`${address}/api/objects/late.bin`);
      assert.equal(late.status, 200);
      await assert.rejects(late.arrayBuffer(), 'the body is cut short, never passed off as whole');
      assert.ok(logged.some((line) => line.includes('cut short')), 'the failure is logged');
      assert.equal((await fetch(`${address}/health`)).status, 200);
    } finally {
      await broken.close();
    }
  });

  it('answers If-None-Match with 304 and HEAD without a body', async () => {
    const put = (await (await fetch(url('/api/objects/cache.txt'), { method: 'PUT', body: 'cached' })).json()) as { etag: string };
    const notModified = await fetch(url('/api/objects/cache.txt'), { headers: { 'if-none-match': `"${put.etag}"` } });
    assert.equal(notModified.status, 304);
    const head = await fetch(url('/api/objects/cache.txt'), { method: 'HEAD' });
    assert.equal(head.status, 200);
    assert.equal(head.headers.get('content-length'), '6');
    assert.equal((await head.arrayBuffer()).byteLength, 0);
  });

  it('answers If-None-Match lists, "*" and weak tags with 304, and ignores malformed tags', async () => {
    const put = (await (await fetch(url('/api/objects/cache-list.txt'), { method: 'PUT', body: 'cached' })).json()) as { etag: string };
    const status = async (header: string, range?: string) => (await fetch(url('/api/objects/cache-list.txt'), { headers: { 'if-none-match': header, ...(range ? { range } : {}) } })).status;
    assert.equal(await status(`"other", W/"${put.etag}"`), 304);
    assert.equal(await status('*'), 304);
    assert.equal(await status(`W/"${put.etag}"`, 'bytes=100-'), 304, 'the condition comes before the range');
    assert.equal(await status('"other", "more"'), 200);
    assert.equal(await status('not a tag, "caf\u00e9"'), 200, 'a malformed tag matches nothing and is no error');
    assert.equal(await status('"other"', 'bytes=100-'), 416);
    assert.equal((await fetch(url('/api/objects/cache-missing.txt'), { headers: { 'if-none-match': `"${put.etag}"` } })).status, 404);
  });

  it('serves ?download=name as an attachment with a safe file name', async () => {
    await fetch(url('/api/objects/report.bin'), { method: 'PUT', body: 'x' });
    const res = await fetch(url(`/api/objects/report.bin?download=${encodeURIComponent('Q3 "final"\r\nX-Evil: 1.pdf')}`));
    assert.equal(res.status, 200);
    const disposition = res.headers.get('content-disposition') ?? '';
    assert.match(disposition, /^attachment; filename="Q3 _final___X-Evil: 1.pdf"; filename\*=UTF-8''/);
    assert.equal(res.headers.get('x-evil'), null);
  });

  it('deletes with 204, also when missing, and lists pages as JSON', async () => {
    for (const k of ['list/a', 'list/b', 'list/sub/c']) await fetch(url(`/api/objects/${k}`), { method: 'PUT', body: k });
    const page = (await (await fetch(url('/api/objects?prefix=list/&delimiter=/&limit=10'))).json()) as { objects: { key: string }[]; prefixes: string[] };
    assert.deepEqual(page.objects.map((o) => o.key), ['list/a', 'list/b']);
    assert.deepEqual(page.prefixes, ['list/sub/']);
    assert.equal((await fetch(url('/api/objects/list/a'), { method: 'DELETE' })).status, 204);
    assert.equal((await fetch(url('/api/objects/list/never'), { method: 'DELETE' })).status, 204);
    assert.equal((await fetch(url('/api/objects/list/a'))).status, 404);
    const bad = await fetch(url('/api/objects?limit=5000'));
    assert.equal(bad.status, 400);
    assert.equal(await errorCode(bad), 'E_INVALID_ARGUMENT');
  });

  it('redirects ?redirect=1 to a signed link that works', async () => {
    await fetch(url('/api/objects/redir.txt'), { method: 'PUT', body: 'via redirect' });
    const res = await fetch(url('/api/objects/redir.txt?redirect=1'), { redirect: 'manual' });
    assert.equal(res.status, 302);
    const location = res.headers.get('location') ?? '';
    assert.ok(location.startsWith(`${base}/files/redir.txt?`), location);
    assert.equal(await (await fetch(location)).text(), 'via redirect');
  });
});

/** Sends a request with the path exactly as given (fetch would normalize "..", "%2e%2e"). */
describe('http: API description', () => {
  it('publishes an OpenAPI document generated from the route schemas, and interactive docs', async () => {
    const doc = (await (await fetch(url('/openapi.json'))).json()) as { openapi: string; paths: Record<string, Record<string, { requestBody?: unknown; parameters?: { name: string }[] }>> };
    assert.match(doc.openapi, /^3\./);
    for (const path of ['/health', '/api/storage/health', '/api/objects', '/api/objects/{*}', '/api/presign']) assert.ok(doc.paths[path], `documents ${path}`);
    assert.ok(doc.paths['/api/presign']?.post?.requestBody, 'the presign body schema is documented');
    assert.deepEqual(doc.paths['/api/objects']?.get?.parameters?.map((p) => p.name).sort(), ['cursor', 'delimiter', 'limit', 'prefix']);
    const docs = await fetch(url('/docs'));
    assert.equal(docs.status, 200);
    assert.match(await docs.text(), /swagger/i);
  });
});

describe('http: request ids', () => {
  it('gives every request its own id, unique across servers, and keeps a caller x-request-id', async () => {
    const idOf = async (target: string, headers: Record<string, string> = {}) => ((await (await fetch(`${target}/api/objects/ids/missing`, { headers })).json()) as { error: { requestId: string } }).error.requestId;
    const other = await buildApp({ storage: createStorage({ driver: 'memory' }), logger: false });
    const otherBase = await other.listen({ host: '127.0.0.1', port: 0 });
    try {
      const ids = [await idOf(base), await idOf(base), await idOf(otherBase), await idOf(otherBase)];
      assert.equal(new Set(ids).size, 4, ids.join(' '));
      for (const id of ids) assert.match(id, /^[\w-]{8}-[0-9a-z]+$/);
      assert.equal(await idOf(base, { 'x-request-id': 'caller-trace-7' }), 'caller-trace-7');
    } finally {
      await other.close();
    }
  });
});

describe('http: metrics', () => {
  it('counts requests by route template and status, bytes, storage latency and errors by code', async () => {
    await fetch(url('/api/objects/metrics/a.txt'), { method: 'PUT', body: 'hello' });
    await fetch(url('/api/objects/metrics/missing.txt'));
    const res = await fetch(url('/metrics'));
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', /text\/plain/);
    const text = await res.text();
    assert.match(text, /stowage_http_requests_total\{method="PUT",route="\/api\/objects\/\*",status="201"\} [1-9]/);
    assert.match(text, /stowage_http_requests_total\{method="GET",route="\/api\/objects\/\*",status="404"\} [1-9]/);
    assert.match(text, /stowage_http_request_bytes_total\{route="\/api\/objects\/\*"\} [1-9]/);
    assert.match(text, /stowage_storage_operation_seconds_count\{backend="fs",operation="put",outcome="ok"\} [1-9]/);
    assert.match(text, /stowage_storage_errors_total\{backend="fs",operation="read",code="E_NOT_FOUND"\} [1-9]/);
    assert.ok(!text.includes('metrics/a.txt'), 'keys never become labels');
  });

  it('counts each response once, by its final status, with exact byte counts, unmatched routes included', async () => {
    const value = (text: string, series: string) => Number(new RegExp(`^${series.replace(/[{}()*/.]/g, '\\$&')} (\\d+)$`, 'm').exec(text)?.[1] ?? 0);
    const scrape = async () => (await fetch(url('/metrics'))).text();
    const get = 'stowage_http_requests_total{method="GET",route="/api/objects/*",status="200"}';
    const head = 'stowage_http_requests_total{method="HEAD",route="/api/objects/*",status="200"}';
    const unmatched = 'stowage_http_requests_total{method="GET",route="unmatched",status="404"}';
    const docs = 'stowage_http_requests_total{method="GET",route="/openapi.json",status="200"}';
    const out = 'stowage_http_response_bytes_total{route="/api/objects/*"}';
    await fetch(url('/api/objects/metrics/b.txt'), { method: 'PUT', body: 'twelve bytes' });
    const before = await scrape();
    await (await fetch(url('/api/objects/metrics/b.txt'))).arrayBuffer();
    await (await fetch(url('/api/objects/metrics/b.txt'))).arrayBuffer();
    await fetch(url('/api/objects/metrics/b.txt'), { method: 'HEAD' });
    await (await fetch(url('/no/such/route'))).arrayBuffer();
    await (await fetch(url('/openapi.json'))).arrayBuffer();
    const after = await scrape();
    assert.equal(value(after, get) - value(before, get), 2);
    assert.equal(value(after, head) - value(before, head), 1);
    assert.equal(value(after, unmatched) - value(before, unmatched), 1);
    assert.equal(value(after, docs) - value(before, docs), 1);
    assert.equal(value(after, out) - value(before, out), 24, 'two bodies of 12 bytes; HEAD sends none');
  });
});

describe('http: bad input', () => {
  for (const [path, code] of KEY_ATTACKS) {
    it(`refuses the key path ${path} with 400 and touches nothing`, async () => {
      const before = await readdir(root);
      for (const method of ['GET', 'PUT', 'DELETE']) {
        const res = await rawRequest(base, method, `/api/objects/${path}`, method === 'PUT' ? 'x' : undefined);
        assert.equal(res.status, 400, `${method} ${path}`);
        assert.equal(res.json.error?.code, code, `${method} ${path}`);
      }
      assert.deepEqual(await readdir(root), before);
    });
  }

  it('refuses compressed bodies with 415', async () => {
    const res = await fetch(url('/api/objects/gz.txt'), { method: 'PUT', body: 'x', headers: { 'content-encoding': 'gzip' } });
    assert.equal(res.status, 415);
    assert.equal((await fetch(url('/api/objects/gz.txt'))).status, 404);
  });

  it('answers unknown routes and wrong methods with a JSON 404', async () => {
    const res = await fetch(url('/api/nothing'));
    assert.equal(res.status, 404);
    assert.equal(await errorCode(res), 'E_ROUTE_NOT_FOUND');
    for (const [method, path] of <[string, string][]>[['PATCH', '/api/objects'], ['PATCH', '/api/objects/a.txt'], ['PUT', '/api/presign'], ['POST', '/api/objects/a.txt'], ['DELETE', '/health']]) {
      const wrong = await fetch(url(path), { method });
      assert.equal(wrong.status, 404, `${method} ${path}`);
      assert.equal(await errorCode(wrong), 'E_ROUTE_NOT_FOUND');
    }
  });

  it('answers huge headers with 431 and garbage with 400, and keeps serving', async () => {
    const raw = (text: string) =>
      new Promise<string>((resolve, reject) => {
        const { port } = new URL(base);
        const socket = connect(Number(port), '127.0.0.1', () => socket.end(text));
        let answer = '';
        socket.on('data', (d) => (answer += d.toString('latin1')));
        socket.on('end', () => resolve(answer));
        // Closing on a client that is still sending may reset the connection before the
        // answer is read (newer Node versions do); a reset is a refusal too.
        socket.on('error', (err: NodeJS.ErrnoException) => (err.code === 'ECONNRESET' ? resolve(answer || 'RESET') : reject(err)));
      });
    const huge = await raw(`GET /api/objects/a HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(64 * 1024)}\r\n\r\n`);
    assert.match(huge, /^(HTTP\/1\.1 431 |RESET$)/);
    const garbage = await raw('NOT AN HTTP REQUEST\r\n\r\n');
    assert.match(garbage, /^HTTP\/1\.1 400 /);
    const rss = process.memoryUsage().rss;
    await Promise.all(Array.from({ length: 200 }, () => raw(`GET / HTTP/1.1\r\nHost: x\r\nX-Big: ${'b'.repeat(32 * 1024)}\r\n\r\n`)));
    assert.ok(process.memoryUsage().rss - rss < 64 * 1024 * 1024, 'refused requests are not kept');
    assert.equal((await fetch(url('/health'))).status, 200);
  });

  it('enforces the upload limit with 413, storing nothing', async () => {
    const small = await start({ maxUploadSize: 1000 });
    try {
      // A body up to 1 MiB is read to the end and dropped: the client gets the answer
      // and keeps its connection.
      const agent = new Agent({ keepAlive: true, maxSockets: 1 });
      const send = (path: string, body?: Buffer) =>
        new Promise<{ status: number; connection?: string; reused: boolean; text: string }>((resolve, reject) => {
          const req = httpRequest(`${small.base}${path}`, { agent, method: body ? 'PUT' : 'GET', headers: body ? { 'content-length': String(body.length) } : {} }, (res) => {
            let text = '';
            res.on('data', (d: Buffer) => (text += d.toString()));
            res.on('end', () => resolve({ status: res.statusCode ?? 0, connection: res.headers.connection, reused: req.reusedSocket, text }));
          });
          req.on('error', reject);
          req.end(body);
        });
      try {
        const refused = await send('/api/objects/big.bin', randomBytes(900_000));
        assert.equal(refused.status, 413);
        assert.match(refused.text, /E_TOO_LARGE/);
        assert.equal(refused.connection, 'keep-alive');
        const next = await send('/health');
        assert.deepEqual([next.status, next.reused], [200, true], 'the same connection serves the next request');
      } finally {
        agent.destroy();
      }
      // A longer one closes the connection once answered: the client stops sending. It
      // may see the reset before it reads the answer, which is a refusal too.
      const long = await new Promise<{ status: number; connection?: string; sent: number }>((resolve, reject) => {
        let sent = 0;
        const req = httpRequest(`${small.base}/api/objects/big.bin`, { method: 'PUT', headers: { 'content-length': String(64 * 1024 * 1024) } }, (res) => {
          res.resume();
          res.on('end', () => resolve({ status: res.statusCode ?? 0, connection: res.headers.connection, sent }));
        });
        req.on('error', (err: NodeJS.ErrnoException) => (err.code === 'ECONNRESET' || err.code === 'EPIPE' ? resolve({ status: 0, connection: 'reset', sent }) : reject(err)));
        const pump = () => {
          while (sent < 64 * 1024 * 1024 && !req.destroyed) {
            sent += 64 * 1024;
            if (!req.write(Buffer.alloc(64 * 1024))) return void req.once('drain', pump);
          }
        };
        pump();
      });
      assert.ok(long.status === 0 || (long.status === 413 && long.connection === 'close'), JSON.stringify(long));
      assert.ok(long.sent < 64 * 1024 * 1024, 'answered before the client sent everything');
      assert.equal(await small.storage.exists('big.bin'), false);
    } finally {
      await small.app.close();
    }
  });

  it('leaves nothing behind when a client disconnects mid-upload', async () => {
    await new Promise<void>((resolve) => {
      const req = httpRequest(url('/api/objects/aborted.bin'), { method: 'PUT', headers: { 'content-length': '10000000' } });
      req.on('error', () => resolve());
      req.write(randomBytes(500_000));
      setTimeout(() => {
        req.destroy();
        resolve();
      }, 100);
    });
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(await storage.exists('aborted.bin'), false);
    const tmp = join(root, '.stowage', 'tmp');
    for (const dir of await readdir(tmp)) assert.deepEqual(await readdir(join(tmp, dir)), [], 'no temp file is left');
  });

  it('reports an unusable backend as 503 without revealing paths', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'stowage-http-broken-'));
    await writeFile(join(dir, 'file'), 'x');
    const broken = await buildApp({ storage: createStorage({ driver: 'fs', root: join(dir, 'file') }), logger: false });
    try {
      const res = await broken.inject({ method: 'GET', url: '/api/storage/health' });
      assert.equal(res.statusCode, 503);
      assert.equal(res.json<{ status: string }>().status, 'unavailable');
      const get = await broken.inject({ method: 'GET', url: '/api/objects/x' });
      assert.equal(get.statusCode, 500);
      assert.ok(!get.body.includes(dir), 'no path in the response');
    } finally {
      await broken.close();
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('http: presigned links on the fs backend', () => {
  async function presign(body: Record<string, unknown>): Promise<{ url: string; headers?: Record<string, string> }> {
    const res = await fetch(url('/api/presign'), { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
    assert.equal(res.status, 200, await res.clone().text());
    return (await res.json()) as { url: string; headers?: Record<string, string> };
  }

  it('round-trips a PUT and a GET link with plain fetch', async () => {
    const up = await presign({ key: 'signed/photo.png', method: 'PUT', contentType: 'image/png', maxSize: 5000 });
    assert.equal((await fetch(up.url, { method: 'PUT', body: Buffer.alloc(4000, 1), headers: { 'content-type': 'image/png' } })).status, 201);
    const down = await presign({ key: 'signed/photo.png', method: 'GET', download: 'me.png' });
    const res = await fetch(down.url);
    assert.equal(res.status, 200);
    assert.equal((await res.arrayBuffer()).byteLength, 4000);
    assert.match(res.headers.get('content-disposition') ?? '', /me\.png/);
  });

  it('enforces the signed type and size, and refuses tampered or expired links', async () => {
    const up = await presign({ key: 'signed/strict.png', method: 'PUT', contentType: 'image/png', maxSize: 100 });
    const wrongType = await fetch(up.url, { method: 'PUT', body: 'x', headers: { 'content-type': 'text/html' } });
    assert.equal(wrongType.status, 403);
    assert.equal(((await wrongType.json()) as { error: { message: string } }).error.message, 'This link requires Content-Type "image/png"; the request sent "text/html".', 'the refusal says which type the link requires');
    const exact = await presign({ key: 'signed/exact.txt', method: 'PUT', contentLength: 5 });
    const wrongLength = await fetch(exact.url, { method: 'PUT', body: 'abc' });
    assert.equal(wrongLength.status, 403);
    assert.equal(((await wrongLength.json()) as { error: { message: string } }).error.message, 'This link requires Content-Length 5; the request sent 3.');
    const tooBig = await fetch(up.url, { method: 'PUT', body: Buffer.alloc(101), headers: { 'content-type': 'image/png' } });
    assert.equal(tooBig.status, 413);
    const tampered = up.url.replace('X-Stowage-Max-Size=100', 'X-Stowage-Max-Size=100000');
    assert.equal((await fetch(tampered, { method: 'PUT', body: 'x', headers: { 'content-type': 'image/png' } })).status, 403);
    assert.equal((await fetch(up.url)).status, 403, 'a PUT link cannot be used to read');
    const short = await presign({ key: 'signed/photo.png', method: 'GET', expiresIn: 1 });
    await new Promise((r) => setTimeout(r, 1100));
    assert.equal((await fetch(short.url)).status, 403);
    assert.equal(await storage.exists('signed/strict.png'), false);
  });

  async function postForm(body: Record<string, unknown>, file: Blob, extra: Record<string, string> = {}, mutate = (u: string) => u): Promise<Response> {
    const res = await fetch(url('/api/presign'), { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ method: 'POST', ...body }) });
    assert.equal(res.status, 200, await res.clone().text());
    const post = (await res.json()) as { url: string; fields: Record<string, string> };
    const form = new FormData();
    for (const [k, v] of Object.entries({ ...post.fields, ...extra })) form.append(k, v);
    form.append('file', file, 'upload.png');
    return fetch(mutate(post.url), { method: 'POST', body: form });
  }

  it('accepts a browser-style POST form within the signed type and size', async () => {
    const res = await postForm({ key: 'forms/ok.png', contentType: 'image/png', maxSize: 1000 }, new Blob([Buffer.alloc(600, 7)], { type: 'image/png' }));
    assert.equal(res.status, 201, await res.clone().text());
    assert.equal(((await res.json()) as { key: string }).key, 'forms/ok.png');
    const info = await storage.stat('forms/ok.png');
    assert.deepEqual([info.size, info.contentType], [600, 'image/png']);
  });

  it('refuses forms that break what was signed, storing nothing', async () => {
    const png = (n: number) => new Blob([Buffer.alloc(n, 1)], { type: 'image/png' });
    const signed = { key: 'forms/bad.png', contentType: 'image/png', maxSize: 1000 };
    const tooBig = await postForm(signed, png(5000));
    assert.equal(tooBig.status, 413);
    assert.equal(await errorCode(tooBig), 'E_TOO_LARGE');
    assert.equal((await postForm(signed, png(10), { 'Content-Type': 'text/html' })).status, 403, 'a type other than the signed one');
    assert.equal((await postForm(signed, png(10), {}, (u) => u.replace('X-Stowage-Max-Size=1000', 'X-Stowage-Max-Size=9999'))).status, 403, 'a tampered limit');
    assert.equal((await postForm(signed, png(10), {}, (u) => u.replace('X-Stowage-Method=POST', 'X-Stowage-Method=PUT'))).status, 403, 'another method');
    const extra = await postForm(signed, png(10), { acl: 'public-read' });
    assert.equal(extra.status, 400);
    assert.match(((await extra.json()) as { error: { message: string } }).error.message, /form field "acl" is not allowed/);
    assert.equal(await storage.exists('forms/bad.png'), false);
    const notForm = await fetch(url('/api/presign'), { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ key: 'forms/bad.png', method: 'POST' }) });
    const { url: action } = (await notForm.json()) as { url: string };
    assert.equal((await fetch(action, { method: 'POST', body: 'raw', headers: { 'content-type': 'text/plain' } })).status, 415);
    assert.equal(await storage.exists('forms/bad.png'), false);
  });

  it('refuses a POST form once it has expired', async () => {
    const res = await fetch(url('/api/presign'), { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ key: 'forms/late.png', method: 'POST', expiresIn: 1 }) });
    const post = (await res.json()) as { url: string };
    await new Promise((r) => setTimeout(r, 1100));
    const form = new FormData();
    form.append('file', new Blob(['x']), 'late.png');
    assert.equal((await fetch(post.url, { method: 'POST', body: form })).status, 403);
    assert.equal(await storage.exists('forms/late.png'), false);
  });

  it('says what to configure when a storage has no signing secret or base URL (E_CONFIG_INVALID)', async () => {
    const bare = createStorage({ driver: 'memory' });
    await assert.rejects(bare.presignPost('k', {}), (e: unknown) => e instanceof StorageError && e.code === 'E_CONFIG_INVALID' && /POST forms on the memory backend need the baseUrl and signingSecret options; missing: baseUrl \(STORAGE_PUBLIC_URL\) and signingSecret \(STORAGE_SIGNING_SECRET\)/.test(e.message));
    const noSecret = createStorage({ driver: 'memory', baseUrl: 'http://127.0.0.1:1' });
    await assert.rejects(noSecret.signedUrl('k', { method: 'GET' }), (e: unknown) => e instanceof StorageError && e.code === 'E_CONFIG_INVALID' && /missing: signingSecret \(STORAGE_SIGNING_SECRET\)$/.test(e.message));
    const unsigned = await buildApp({ storage: bare, logger: false });
    try {
      const address = await unsigned.listen({ host: '127.0.0.1', port: 0 });
      for (const body of [{ key: 'k', method: 'GET' }, { key: 'k', method: 'POST' }]) {
        const res = await fetch(`${address}/api/presign`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
        assert.equal(res.status, 500);
        const { code, message } = ((await res.json()) as { error: { code: string; message: string } }).error;
        assert.deepEqual([code, message], ['E_CONFIG_INVALID', 'Signed links are not configured on this server: set baseUrl (STORAGE_PUBLIC_URL) and signingSecret (STORAGE_SIGNING_SECRET).']);
      }
    } finally {
      await unsigned.close();
    }
  });
});
