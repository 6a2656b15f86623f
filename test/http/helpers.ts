/**
 * Pieces the HTTP tests share across backends: the service as a real process, a slow
 * upload, a raw request that sends the path exactly as written, the key attacks every
 * backend must refuse, and a well-formed PNG.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, request, type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after } from 'node:test';
import { crc32, deflateSync } from 'node:zlib';
import type { FastifyInstance } from 'fastify';
import { buildApp, createStorage, type BuildAppOptions, type Storage } from '../../src/index.js';

const SERVER = new URL('../../src/http/server.ts', import.meta.url).pathname;

/** The line the server prints once it listens; group 1 is its address. */
export const LISTENING = /Stowage listening on (http:\/\/127\.0\.0\.1:\d+)/;

/** Starts the server (`npm start`'s program); resolves with its output once `until` matches it, or once it exits. */
export function runServer(env: Record<string, string>, until: RegExp): Promise<{ output: string; code: number | null; child: ReturnType<typeof spawn> }> {
  const child = spawn(process.execPath, ['--import', 'tsx', SERVER], { env: { PATH: process.env.PATH, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  return new Promise((resolve) => {
    const check = (chunk: Buffer) => {
      output += chunk.toString();
      if (until.test(output)) resolve({ output, code: null, child });
    };
    child.stdout.on('data', check);
    child.stderr.on('data', check);
    child.once('exit', (code) => resolve({ output, code, child }));
  });
}

/** PUTs `total` bytes in pieces of `pieceBytes`, one every `everyMs`; resolves with the HTTP status, or 0 if the connection dies. */
export function slowUpload(address: string, key: string, total: number, everyMs: number, pieceBytes = 64 * 1024): Promise<number> {
  return new Promise((resolve) => {
    const req = request(`${address}/api/objects/${key}`, { method: 'PUT', headers: { 'content-length': String(total) } }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on('error', () => resolve(0));
    let sent = 0;
    const timer = setInterval(() => {
      const size = Math.min(pieceBytes, total - sent);
      req.write(Buffer.alloc(size, 1));
      sent += size;
      if (sent >= total) {
        clearInterval(timer);
        req.end();
      }
    }, everyMs);
    req.on('close', () => clearInterval(timer));
  });
}

/** Sends `path` exactly as written (fetch would normalize `..` and `\`). */
export function rawRequest(base: string, method: string, path: string, body?: string): Promise<{ status: number; json: { error?: { code: string } } }> {
  return new Promise((resolve, reject) => {
    const req = request(`${base}/`, { method, path, headers: body === undefined ? {} : { 'content-length': String(Buffer.byteLength(body)) } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, json: JSON.parse(Buffer.concat(chunks).toString() || '{}') as { error?: { code: string } } }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

/** Key paths every route must answer with 400 and the code, touching nothing. */
export const KEY_ATTACKS: [string, string][] = [
  ['..%2F..%2Fetc%2Fpasswd', 'E_INVALID_KEY'],
  ['a/%2e%2e/%2e%2e/etc', 'E_INVALID_KEY'],
  ['a/../b', 'E_INVALID_KEY'],
  ['../../etc/passwd', 'E_INVALID_KEY'],
  ['a%2Fb', 'E_INVALID_KEY'],
  ['a%00b', 'E_INVALID_KEY'],
  ['a%5Cb', 'E_INVALID_KEY'],
  ['a\\b', 'E_INVALID_KEY'],
  ['%2F', 'E_INVALID_KEY'],
  ['a//b', 'E_INVALID_KEY'],
  ['%E0%A4%A', 'E_INVALID_ARGUMENT'],
];

/** A well-formed PNG (file-type parses chunk by chunk, so random bytes after the signature are not enough). */
export function png(payloadBytes: number): Buffer {
  const chunk = (type: string, data: Buffer) => {
    const length = Buffer.alloc(4);
    length.writeUInt32BE(data.length);
    return Buffer.concat([length, Buffer.from(type), data, Buffer.alloc(4)]);
  };
  const header = Buffer.from([0, 0, 0, 1, 0, 0, 0, 1, 8, 2, 0, 0, 0]); // 1x1, 8-bit RGB
  return Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), chunk('IHDR', header), chunk('IDAT', randomBytes(payloadBytes)), chunk('IEND', Buffer.alloc(0))]);
}

/** A loopback port nothing listens on now (for a server that must know its port before it starts, or a dead endpoint). */
export async function freePort(): Promise<number> {
  const probe = createServer();
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
  const { port } = probe.address() as AddressInfo;
  await new Promise((resolve) => probe.close(resolve));
  return port;
}

/** A service on a fresh fs root (or `root`), listening on loopback, whose signed links point at itself. */
export async function startFsService(opts: Partial<BuildAppOptions> = {}, root?: string): Promise<{ app: FastifyInstance; base: string; storage: Storage; root: string }> {
  const dir = root ?? (await mkdtemp(join(tmpdir(), 'stowage-http-')));
  // A free port first, since the storage's base URL must name it.
  const port = await freePort();
  const storage = createStorage({ driver: 'fs', root: dir, baseUrl: `http://127.0.0.1:${port}`, signingSecret: TEST_SECRET });
  const app = await buildApp({ storage, signingSecret: TEST_SECRET, logger: false, ...opts });
  const base = await app.listen({ host: '127.0.0.1', port });
  return { app, base, storage, root: dir };
}

/**
 * A `start` that runs {@link startFsService} and registers everything it started for
 * closing and removal once the test file is done (call at the top level of a test file).
 */
export function servicesClosedAfterAll(): (opts?: Partial<BuildAppOptions>) => ReturnType<typeof startFsService> {
  const started: { app: FastifyInstance; root: string }[] = [];
  after(async () => {
    await Promise.all(started.map((s) => s.app.close()));
    await Promise.all(started.map((s) => rm(s.root, { recursive: true, force: true })));
  });
  return async (opts = {}) => {
    const service = await startFsService(opts);
    started.push(service);
    return service;
  };
}

/** The signing secret of {@link startFsService}. */
export const TEST_SECRET = 'http-test-signing-secret-0123456789';

/** One HTTP request with headers fetch will not send as given (Host, Origin); resolves with status, headers and body. */
export function sendRequest(base: string, opts: { method?: string; path: string; headers?: Record<string, string>; body?: string | Buffer }): Promise<{ status: number; headers: IncomingHttpHeaders; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(`${base}${opts.path}`, { method: opts.method ?? 'GET', headers: opts.headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString() }));
    });
    req.on('error', reject);
    req.end(opts.body);
  });
}

/** A PNG a browser decodes: `width` x `height` pixels of one RGB colour, with real CRCs and zlib data. */
export function solidPng(width: number, height: number, rgb: [number, number, number]): Buffer {
  const chunk = (type: string, data: Buffer) => {
    const length = Buffer.alloc(4);
    length.writeUInt32BE(data.length);
    const crc = Buffer.alloc(4);
    crc.writeUInt32BE(crc32(Buffer.concat([Buffer.from(type), data])));
    return Buffer.concat([length, Buffer.from(type), data, crc]);
  };
  const header = Buffer.alloc(13);
  header.writeUInt32BE(width, 0);
  header.writeUInt32BE(height, 4);
  header.set([8, 2, 0, 0, 0], 8); // 8-bit RGB
  const row = Buffer.concat([Buffer.from([0]), Buffer.alloc(width * 3).map((_, i) => rgb[i % 3] as number)]);
  const pixels = deflateSync(Buffer.concat(Array.from({ length: height }, () => row)));
  return Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), chunk('IHDR', header), chunk('IDAT', pixels), chunk('IEND', Buffer.alloc(0))]);
}

/**
 * {@link runServer} with a deadline: rejects, with the output so far, when `until` has not
 * matched (nor the process exited) after `ms`, and kills the process then.
 */
export function runServerWithin(env: Record<string, string>, until: RegExp, ms = 20_000): Promise<{ output: string; code: number | null; child: ReturnType<typeof spawn> }> {
  const child = spawn(process.execPath, ['--import', 'tsx', SERVER], { env: { PATH: process.env.PATH, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`the server printed nothing matching ${String(until)} within ${ms} ms; it printed: ${output}`));
    }, ms);
    const check = (chunk: Buffer) => {
      output += chunk.toString();
      if (!until.test(output)) return;
      clearTimeout(timer);
      resolve({ output, code: null, child });
    };
    child.stdout.on('data', check);
    child.stderr.on('data', check);
    child.once('exit', (code) => {
      clearTimeout(timer);
      resolve({ output, code, child });
    });
  });
}
