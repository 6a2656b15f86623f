/**
 * The outbox layer on a real folder: what a write answers when the backend is down, what
 * is on disk then, read-your-writes, supersede, ordering, the disk cap, and bodies the
 * failed attempt had partly consumed.
 */
import assert from 'node:assert/strict';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { describe, it } from 'node:test';
import { isQueued, MemoryDriver, outboxOf, Storage, type PutBody, withOutbox, type DriverPutOptions, type OutboxOptions, type QueuedWrite, type WriteResult } from '../../../src/index.js';
import { readAll } from '../../../src/core/body.js';
import { rejectsWith } from '../../conformance/harness.js';
import { FAST, sha256, Switch, tempDir, waitFor } from './helpers.js';

/** A storage over memory behind a switch, with an outbox in a temp folder. */
async function setup(options: Partial<OutboxOptions> = {}) {
  const dir = await tempDir('outbox');
  const backend = new MemoryDriver();
  const line = new Switch(backend);
  const storage = new Storage<WriteResult>(withOutbox(line, { dir, ...FAST, ...options }));
  const control = outboxOf(storage.driver);
  assert.ok(control);
  return { dir, backend, line, storage, control };
}

function queued(result: WriteResult): QueuedWrite {
  assert.ok(isQueued(result), `expected a queued write, got ${JSON.stringify(result)}`);
  return result;
}

describe('outbox: writes while the backend is down', () => {
  it('stores directly while the backend is up, and answers a QueuedWrite when it is down', async () => {
    const { storage, line, backend, dir } = await setup();
    const stored = await storage.put('a.txt', 'stored');
    assert.equal(isQueued(stored), false);
    line.down = true;
    const result = queued(await storage.put('b.txt', 'queued body', { contentType: 'text/plain', metadata: { who: 'me' } }));
    assert.equal(result.status, 'queued');
    assert.equal(result.key, 'b.txt');
    assert.equal(result.size, 11);
    assert.equal(result.sha256, sha256('queued body'));
    assert.equal(result.reason, 'E_UNAVAILABLE');
    assert.ok(result.queuedAt instanceof Date);
    // On disk: the body in spool/ under its id, one journal line naming it.
    assert.deepEqual(await readdir(join(dir, 'spool')), [result.id]);
    assert.equal(await readFile(join(dir, 'spool', result.id), 'utf8'), 'queued body');
    const journal = (await readFile(join(dir, 'journal.log'), 'utf8')).trim().split('\n').map((l) => JSON.parse(l) as { op: string; entry?: { id: string } });
    assert.deepEqual(journal.map((r) => [r.op, r.entry?.id]), [['queued', result.id]]);
    await assert.rejects(backend.stat('b.txt'), /no object/);
    await storage.close();
  });

  it('reads the queued version meanwhile: get, getStream with a range, stat, exists, If-None-Match', async () => {
    const { storage, line, control } = await setup();
    await storage.put('k.txt', 'old version');
    line.down = true;
    const result = queued(await storage.put('k.txt', 'new version!', { contentType: 'text/x-new', metadata: { v: '2' } }));
    assert.equal((await storage.get('k.txt')).toString(), 'new version!');
    const info = await storage.stat('k.txt');
    assert.equal(info.sha256, result.sha256);
    assert.equal(info.size, 12);
    assert.equal(info.contentType, 'text/x-new');
    assert.deepEqual(info.metadata, { v: '2' });
    assert.equal(await storage.exists('k.txt'), true);
    const part = await storage.getStream('k.txt', { range: { start: 4, end: 6 } });
    assert.deepEqual(part.range, { start: 4, end: 6 });
    assert.equal((await readAll(part.stream)).toString(), "ver");
    const unchanged = await storage.get('k.txt', { ifNoneMatch: info.etag });
    assert.ok(!Buffer.isBuffer(unchanged) && unchanged.notModified);
    await rejectsWith(storage.getStream('k.txt', { range: { start: 50 } }), 'E_RANGE_NOT_SATISFIABLE');
    line.down = false;
    await control.drain();
    assert.equal((await storage.get('k.txt')).toString(), 'new version!');
    await storage.close();
  });

  it('delivers in the background once the backend is back, verified, and removes the entry', async () => {
    const { storage, line, backend, control, dir } = await setup();
    line.down = true;
    const results = await Promise.all(Array.from({ length: 10 }, (_, i) => storage.put(`many/${i}.bin`, Buffer.alloc(1000 + i, i))));
    results.forEach((r) => queued(r));
    assert.equal((await control.status()).pending, 10);
    line.down = false;
    await waitFor(async () => (await control.status()).pending === 0, 'delivery');
    for (let i = 0; i < 10; i++) assert.equal((await backend.stat(`many/${i}.bin`)).sha256, sha256(Buffer.alloc(1000 + i, i)));
    const status = await control.status();
    assert.equal(status.delivered, 10);
    assert.equal(status.pendingBytes, 0);
    assert.deepEqual(await readdir(join(dir, 'spool')), []);
    await storage.close();
  });

  it('a later write of a queued key supersedes it, queued or stored; a delete does too', async () => {
    const { storage, line, backend, control, dir } = await setup({ initialDelayMs: 60_000, maxDelayMs: 60_000 });
    line.down = true;
    const first = queued(await storage.put('s.txt', 'first'));
    const second = queued(await storage.put('s.txt', 'second'));
    assert.deepEqual(await readdir(join(dir, 'spool')), [second.id], 'the first body is gone');
    assert.equal((await control.status()).pending, 1);
    assert.notEqual(first.id, second.id);
    line.down = false;
    // A direct write wins over the queued one, which is never delivered after it.
    await storage.put('s.txt', 'third, direct');
    assert.equal((await control.status()).pending, 0);
    assert.equal((await storage.get('s.txt')).toString(), 'third, direct');
    line.down = true;
    queued(await storage.put('d.txt', 'to be deleted'));
    line.down = false;
    await storage.delete('d.txt');
    assert.equal(await storage.exists('d.txt'), false);
    assert.equal((await control.drain()).delivered, 0);
    await assert.rejects(backend.stat('d.txt'), /no object/);
    await storage.close();
  });

  it('conditions: create-only finds the queued version, If-Match is checked against it', async () => {
    const { storage, line, control } = await setup();
    line.down = true;
    const first = queued(await storage.put('c.txt', 'v1', { ifNoneMatch: '*' }));
    await rejectsWith(storage.put('c.txt', 'v2', { ifNoneMatch: '*' }), 'E_ALREADY_EXISTS');
    await rejectsWith(storage.put('c.txt', 'v2', { ifMatch: 'not-it' }), 'E_PRECONDITION_FAILED');
    const etag = (await storage.stat('c.txt')).etag;
    line.down = false;
    // Matching the queued version queues behind it (the backend does not have it yet), keeping its create-only condition.
    const second = queued(await storage.put('c.txt', 'v2', { ifMatch: etag }));
    assert.notEqual(second.id, first.id);
    const report = await control.drain();
    assert.equal(report.delivered, 1);
    assert.equal((await storage.get('c.txt')).toString(), 'v2');
    await storage.close();
  });

  it('removes the temp copies of stored writes (past memoryBytes) by the time close() returns', async () => {
    const { storage, backend, dir } = await setup({ memoryBytes: 64 * 1024 });
    const bodies = Array.from({ length: 6 }, (_, n) => Buffer.alloc(2 * 1024 * 1024, n + 1));
    const chunked = (bytes: Buffer) => Readable.from(Array.from({ length: bytes.length / 65536 }, (_, i) => bytes.subarray(i * 65536, (i + 1) * 65536)));
    const results = await Promise.all(bodies.map((bytes, n) => storage.put(`big/${n}`, chunked(bytes))));
    assert.ok(results.every((result) => !isQueued(result)));
    await storage.close();
    assert.deepEqual(await readdir(join(dir, 'tmp')), []);
    for (const [n, bytes] of bodies.entries()) assert.ok((await new Storage(backend).get(`big/${n}`)).equals(bytes));
  });

  it('spools the whole body when the failed attempt had consumed part of it (a large, streamed body)', async () => {
    const { storage, backend, control } = await setup({ memoryBytes: 64 * 1024 });
    // A backend that reads 300 KiB of the body, then loses the connection.
    const original = backend.put.bind(backend);
    let failing = true;
    backend.put = async (key: string, body: PutBody, opts: DriverPutOptions) => {
      if (!failing) return original(key, body, opts);
      let read = 0;
      for await (const chunk of body) if ((read += chunk.byteLength) > 300 * 1024) break;
      throw new (await import('../../../src/index.js')).StorageError('E_UNAVAILABLE', 'connection reset');
    };
    const bytes = Buffer.alloc(1024 * 1024 + 17);
    for (let i = 0; i < bytes.length; i++) bytes[i] = (i * 7) % 251;
    const chunks = Array.from({ length: Math.ceil(bytes.length / 16384) }, (_, i) => bytes.subarray(i * 16384, (i + 1) * 16384));
    const result = queued(await storage.put('big.bin', Readable.from(chunks)));
    assert.equal(result.size, bytes.length);
    assert.equal(result.sha256, sha256(bytes));
    failing = false;
    assert.equal((await control.drain()).delivered, 1);
    assert.ok((await new Storage(backend).get('big.bin')).equals(bytes));
    await storage.close();
  });

  it("does not queue the caller's own failures: a wrong SHA-256 or an oversized body stores and spools nothing", async () => {
    const { storage, line, control, dir } = await setup();
    line.down = true;
    await rejectsWith(storage.put('x.txt', 'abc', { sha256: sha256('other') }), 'E_CHECKSUM_MISMATCH');
    await rejectsWith(storage.put('y.txt', Readable.from([Buffer.alloc(10), Buffer.alloc(10)]), { maxSize: 15 }), 'E_TOO_LARGE');
    assert.equal((await control.status()).pending, 0);
    assert.deepEqual(await readdir(join(dir, 'spool')), []);
    assert.deepEqual(await readdir(join(dir, 'tmp')), []);
    await storage.close();
  });

  it('refuses a write past maxBytes with E_QUOTA_EXCEEDED and keeps every entry it had', async () => {
    const { storage, line, backend, control } = await setup({ maxBytes: 2500 });
    line.down = true;
    queued(await storage.put('q/1', Buffer.alloc(1000, 1)));
    queued(await storage.put('q/2', Buffer.alloc(1000, 2)));
    const err = await rejectsWith(storage.put('q/3', Buffer.alloc(1000, 3)), 'E_QUOTA_EXCEEDED', 'is full');
    assert.equal(err.retryable, false);
    await rejectsWith(storage.put('q/4', Readable.from([Buffer.alloc(600), Buffer.alloc(600)])), 'E_QUOTA_EXCEEDED');
    const status = await control.status();
    assert.equal(status.pending, 2);
    assert.equal(status.pendingBytes, 2000);
    line.down = false;
    assert.equal((await control.drain()).delivered, 2);
    assert.ok((await new Storage(backend).get('q/1')).equals(Buffer.alloc(1000, 1)));
    assert.ok((await new Storage(backend).get('q/2')).equals(Buffer.alloc(1000, 2)));
    await storage.close();
  });

  it('queues putFile too, from the file itself', async () => {
    const dir = await tempDir('outbox-putfile');
    const { writeFile } = await import('node:fs/promises');
    const file = join(dir, 'local.bin');
    await writeFile(file, Buffer.alloc(5000, 9));
    const { FsDriver } = await import('../../../src/index.js');
    const line = new Switch(new FsDriver({ root: join(dir, 'root') }));
    const storage = new Storage<WriteResult>(withOutbox(line, { dir: join(dir, 'outbox'), ...FAST }));
    line.down = true;
    const result = queued(await storage.putFile('f.bin', file));
    assert.equal(result.sha256, sha256(Buffer.alloc(5000, 9)));
    line.down = false;
    assert.equal((await outboxOf(storage.driver)?.drain())?.delivered, 1);
    assert.equal((await storage.stat('f.bin')).sha256, result.sha256);
    await storage.close();
  });

  it('refuses a copy, move or presigned download of a queued key (the backend has an older version), and a second process on the folder', async () => {
    const { storage, line, dir } = await setup();
    line.down = true;
    queued(await storage.put('src.txt', 'queued'));
    line.down = false;
    await rejectsWith(storage.copy('src.txt', 'dst.txt'), 'E_UNAVAILABLE', 'queued in the outbox');
    await rejectsWith(storage.move('src.txt', 'dst.txt'), 'E_UNAVAILABLE', 'queued in the outbox');
    // A presigned download (S3) would send the client to the backend, which lacks it.
    await rejectsWith(storage.driver.signedUrl('src.txt', { method: 'GET', expiresIn: 60 }), 'E_UNAVAILABLE', 'presign a download of');
    const other = new Storage<WriteResult>(withOutbox(new MemoryDriver(), { dir, ...FAST }));
    await rejectsWith(other.put('z', 'z'), 'E_UNAVAILABLE', `in use by process ${process.pid}`);
    await other.close();
    await storage.close();
  });
});
