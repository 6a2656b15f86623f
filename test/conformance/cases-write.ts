/** Conformance cases for put and putFile: body types, options, integrity and failures. */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { ReadableStream } from 'node:stream/web';
import { it } from 'node:test';
import { chunked, collect, failingBody, rejectsWith, sha256 } from './harness.js';
import type { StorageGetter } from './suite.js';

export function writeCases(storage: StorageGetter): void {
  it('stores a Buffer and returns complete info', async () => {
    const before = Date.now();
    const data = Buffer.from('hello world');
    const info = await storage().put('docs/hello.txt', data);
    assert.equal(info.key, 'docs/hello.txt');
    assert.equal(info.size, data.length);
    assert.equal(info.sha256, sha256(data));
    assert.equal(info.contentType, 'text/plain');
    assert.deepEqual(info.metadata, {});
    assert.ok(typeof info.etag === 'string' && info.etag.length > 0 && !info.etag.includes('"'));
    assert.ok(info.lastModified.getTime() >= before - 2000 && info.lastModified.getTime() <= Date.now() + 2000);
    assert.deepEqual(await storage().get('docs/hello.txt'), data);
  });

  it('stores a string as UTF-8', async () => {
    await storage().put('s.txt', 'Grüße 🌍');
    assert.equal((await storage().get('s.txt')).toString('utf8'), 'Grüße 🌍');
    assert.equal((await storage().stat('s.txt')).size, Buffer.byteLength('Grüße 🌍'));
  });

  it('stores a plain Uint8Array', async () => {
    await storage().put('u8', new Uint8Array([1, 2, 3, 255]));
    assert.deepEqual([...(await storage().get('u8'))], [1, 2, 3, 255]);
  });

  it('stores a Node Readable of unknown length', async () => {
    const info = await storage().put('stream.bin', chunked('ab', 'cd', Buffer.alloc(100_000, 7), 'z'));
    assert.equal(info.size, 100_005);
    assert.equal(info.sha256, sha256(Buffer.concat([Buffer.from('abcd'), Buffer.alloc(100_000, 7), Buffer.from('z')])));
  });

  it('stores a web ReadableStream', async () => {
    const web = new ReadableStream<Uint8Array>({
      start(controller) {
        controller.enqueue(new TextEncoder().encode('web '));
        controller.enqueue(new TextEncoder().encode('stream'));
        controller.close();
      },
    });
    await storage().put('web.txt', web);
    assert.equal((await storage().get('web.txt')).toString(), 'web stream');
  });

  it('stores an async iterable of bytes', async () => {
    async function* gen() {
      for (let i = 0; i < 10; i++) yield Buffer.from(String(i));
    }
    await storage().put('gen.txt', gen());
    assert.equal((await storage().get('gen.txt')).toString(), '0123456789');
  });

  it('stores a 0-byte object', async () => {
    const info = await storage().put('empty', Buffer.alloc(0));
    assert.equal(info.size, 0);
    assert.equal(info.sha256, sha256(''));
    assert.equal((await storage().get('empty')).length, 0);
    const { stream, info: streamed } = await storage().getStream('empty');
    assert.equal((await collect(stream)).length, 0);
    assert.equal(streamed.size, 0);
  });

  it('stores a 0-byte stream', async () => {
    const info = await storage().put('empty-stream', Readable.from([]));
    assert.equal(info.size, 0);
    assert.equal((await storage().stat('empty-stream')).size, 0);
  });

  it('streams a 200 MiB object through and back intact', async () => {
    const expected = createHash('sha256');
    async function* big() {
      for (let i = 0; i < 200; i++) {
        const chunk = randomBytes(1024 * 1024);
        expected.update(chunk);
        yield chunk;
      }
    }
    const info = await storage().put('big/200mib.bin', big());
    const digest = expected.digest('hex');
    assert.equal(info.size, 200 * 1024 * 1024);
    assert.equal(info.sha256, digest);
    const { stream } = await storage().getStream('big/200mib.bin');
    const readBack = createHash('sha256');
    let size = 0;
    for await (const chunk of stream) {
      readBack.update(chunk as Buffer);
      size += (chunk as Buffer).length;
    }
    assert.equal(size, info.size);
    assert.equal(readBack.digest('hex'), digest);
  });

  it('replaces an existing object', async () => {
    await storage().put('k', 'first version');
    const second = await storage().put('k', 'second');
    assert.equal((await storage().get('k')).toString(), 'second');
    assert.equal((await storage().stat('k')).etag, second.etag);
  });

  it('returns the same info from put and stat', async () => {
    const put = await storage().put('same.json', '{}', { metadata: { a: '1' }, cacheControl: 'no-cache' });
    const stat = await storage().stat('same.json');
    assert.deepEqual({ ...stat, lastModified: undefined }, { ...put, lastModified: undefined });
    // Some backends (S3) keep whole seconds and the server's clock: allow for both.
    assert.ok(Math.abs(stat.lastModified.getTime() - put.lastModified.getTime()) < 2500);
  });

  it('changes the ETag when the content changes', async () => {
    const a = await storage().put('etag', 'one');
    const b = await storage().put('etag', 'two');
    assert.notEqual(a.etag, b.etag);
  });

  it('guesses the content type from the extension', async () => {
    assert.equal((await storage().put('p/photo.jpg', 'x')).contentType, 'image/jpeg');
    assert.equal((await storage().put('p/clip.mp3', 'x')).contentType, 'audio/mpeg');
    assert.equal((await storage().put('p/noext', 'x')).contentType, 'application/octet-stream');
  });

  it('keeps an explicit content type', async () => {
    await storage().put('data', 'x', { contentType: 'application/vnd.custom+json; charset=utf-8' });
    assert.equal((await storage().stat('data')).contentType, 'application/vnd.custom+json; charset=utf-8');
  });

  it('rejects a malformed content type and stores nothing', async () => {
    await rejectsWith(storage().put('bad-ct', 'x', { contentType: 'text/plain\r\nX-Evil: 1' }), 'E_INVALID_ARGUMENT', 'contentType');
    assert.equal(await storage().exists('bad-ct'), false);
  });

  it('round-trips user metadata with Unicode values and lowercased names', async () => {
    await storage().put('meta', 'x', { metadata: { UserId: '42', 'original-name': 'Фото 写真 📷.jpg', note: 'a=b&c d' } });
    assert.deepEqual((await storage().stat('meta')).metadata, { userid: '42', 'original-name': 'Фото 写真 📷.jpg', note: 'a=b&c d' });
  });

  it('rejects metadata names with other characters', async () => {
    await rejectsWith(storage().put('m1', 'x', { metadata: { 'bad name': 'v' } }), 'E_INVALID_ARGUMENT', 'metadata name');
    await rejectsWith(storage().put('m1', 'x', { metadata: { 'x:y': 'v' } }), 'E_INVALID_ARGUMENT');
    await rejectsWith(storage().put('m1', 'x', { metadata: { 'Stowage-SHA256': 'forged' } }), 'E_INVALID_ARGUMENT', 'reserved');
    assert.equal(await storage().exists('m1'), false);
  });

  it('rejects metadata values with control characters or non-strings', async () => {
    await rejectsWith(storage().put('m2', 'x', { metadata: { a: 'line\nbreak' } }), 'E_INVALID_ARGUMENT', 'control');
    await rejectsWith(storage().put('m2', 'x', { metadata: { a: 5 as unknown as string } }), 'E_INVALID_ARGUMENT', 'string');
  });

  it('rejects metadata over 2 KiB', async () => {
    await rejectsWith(storage().put('m3', 'x', { metadata: { big: 'v'.repeat(2100) } }), 'E_INVALID_ARGUMENT', '2048');
  });

  it('round-trips cacheControl and contentDisposition', async () => {
    await storage().put('h.pdf', 'x', { cacheControl: 'public, max-age=60', contentDisposition: 'attachment; filename="a.pdf"' });
    const info = await storage().stat('h.pdf');
    assert.equal(info.cacheControl, 'public, max-age=60');
    assert.equal(info.contentDisposition, 'attachment; filename="a.pdf"');
  });

  it('accepts a body whose SHA-256 matches the expected one (any case)', async () => {
    const info = await storage().put('sum', 'payload', { sha256: sha256('payload').toUpperCase() });
    assert.equal(info.sha256, sha256('payload'));
  });

  it('rejects a checksum mismatch and keeps the previous version', async () => {
    await storage().put('sum2', 'old');
    await rejectsWith(storage().put('sum2', chunked('new ', 'data'), { sha256: sha256('something else') }), 'E_CHECKSUM_MISMATCH');
    assert.equal((await storage().get('sum2')).toString(), 'old');
  });

  it('stores nothing on a checksum mismatch for a new key', async () => {
    await rejectsWith(storage().put('sum3', 'data', { sha256: '0'.repeat(64) }), 'E_CHECKSUM_MISMATCH');
    assert.equal(await storage().exists('sum3'), false);
    assert.deepEqual((await storage().list()).objects, []);
  });

  it('rejects a malformed expected checksum', async () => {
    await rejectsWith(storage().put('sum4', 'data', { sha256: 'abc' }), 'E_INVALID_ARGUMENT', 'sha256');
  });

  it('refuses a streamed body over maxSize and stores nothing', async () => {
    await rejectsWith(storage().put('max', chunked(Buffer.alloc(600), Buffer.alloc(600)), { maxSize: 1000 }), 'E_TOO_LARGE');
    assert.equal(await storage().exists('max'), false);
  });

  it('accepts a body of exactly maxSize', async () => {
    assert.equal((await storage().put('max2', Buffer.alloc(1000), { maxSize: 1000 })).size, 1000);
  });

  it('stores nothing when the body stream fails half way, keeping the old version', async () => {
    await storage().put('fail', 'intact');
    await rejectsWith(storage().put('fail', failingBody(256 * 1024)), 'E_INVALID_ARGUMENT', 'connection reset');
    assert.equal((await storage().get('fail')).toString(), 'intact');
    await rejectsWith(storage().put('fail-new', failingBody(1024)), 'E_INVALID_ARGUMENT');
    assert.equal(await storage().exists('fail-new'), false);
    assert.deepEqual((await storage().list()).objects.map((o) => o.key), ['fail']);
  });

  it('rejects a body that is not bytes', async () => {
    await rejectsWith(storage().put('nb', 42 as unknown as string), 'E_INVALID_ARGUMENT', 'body');
    await rejectsWith(storage().put('nb', Readable.from([1, 2, 3], { objectMode: true })), 'E_INVALID_ARGUMENT', 'bytes');
    assert.equal(await storage().exists('nb'), false);
  });

  it('stores nothing when the write is aborted', async () => {
    const controller = new AbortController();
    async function* slow() {
      yield Buffer.alloc(1024);
      controller.abort();
      yield Buffer.alloc(1024);
    }
    await assert.rejects(storage().put('aborted', slow(), { signal: controller.signal }));
    assert.equal(await storage().exists('aborted'), false);
  });

  it('stores a local file with putFile', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'stowage-putfile-'));
    try {
      const path = join(dir, 'report.pdf');
      const data = randomBytes(300_000);
      await writeFile(path, data);
      const info = await storage().putFile('reports/2024', path);
      assert.equal(info.contentType, 'application/pdf');
      assert.equal(info.sha256, sha256(data));
      assert.deepEqual(await storage().get('reports/2024'), data);
      await rejectsWith(storage().putFile('missing', join(dir, 'nope')), 'E_INVALID_ARGUMENT', 'cannot read file');
      await rejectsWith(storage().putFile('folder', dir), 'E_INVALID_ARGUMENT', 'not a regular file');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('applies checksum, size and create-only checks to putFile, storing nothing on failure', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'stowage-putfile-'));
    try {
      const path = join(dir, 'photo.jpg');
      await writeFile(path, Buffer.alloc(5000, 3));
      await storage().put('kept', 'old');
      await rejectsWith(storage().putFile('kept', path, { sha256: sha256('other') }), 'E_CHECKSUM_MISMATCH');
      await rejectsWith(storage().putFile('kept', path, { maxSize: 4999 }), 'E_TOO_LARGE');
      await rejectsWith(storage().putFile('kept', path, { ifNoneMatch: '*' }), 'E_ALREADY_EXISTS');
      assert.equal((await storage().get('kept')).toString(), 'old');
      const info = await storage().putFile('fresh', path, { sha256: sha256(Buffer.alloc(5000, 3)), maxSize: 5000, metadata: { a: 'b' } });
      assert.equal(info.contentType, 'image/jpeg');
      assert.deepEqual((await storage().stat('fresh')).metadata, { a: 'b' });
      assert.deepEqual((await storage().list()).objects.map((o) => o.key), ['fresh', 'kept']);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
}
