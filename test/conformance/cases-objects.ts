/** Conformance cases for delete, deleteMany, copy, move, conditional writes, signed URLs, health. */
import assert from 'node:assert/strict';
import { it } from 'node:test';
import { verifySignedUrl } from '../../src/index.js';
import { SIGNING, allKeys, rejectsWith, sha256, type ConformanceTarget } from './harness.js';
import type { StorageGetter } from './suite.js';

export function objectCases(storage: StorageGetter, target: ConformanceTarget): void {
  it('deletes an object', async () => {
    await storage().put('d/x', 'x');
    await storage().delete('d/x');
    assert.equal(await storage().exists('d/x'), false);
    assert.deepEqual(await allKeys(storage()), []);
  });

  it('resolves when deleting a missing key', async () => {
    await storage().delete('never/existed');
    await storage().put('d/y', 'y');
    await storage().delete('d/y');
    await storage().delete('d/y');
  });

  it('deletes a list of keys, counting missing ones', async () => {
    await storage().put('m/1', '1');
    await storage().put('m/2', '2');
    await storage().put('keep', 'k');
    assert.equal(await storage().deleteMany(['m/1', 'm/2', 'm/missing', 'm/1']), 3);
    assert.deepEqual(await allKeys(storage()), ['keep']);
    assert.equal(await storage().deleteMany([]), 0);
  });

  it('deletes everything under a prefix and nothing else', async () => {
    for (let i = 0; i < 30; i++) await storage().put(`tmp/${i}`, String(i));
    await storage().put('tmpfile', 'not under tmp/');
    assert.equal(await storage().deleteMany({ prefix: 'tmp/' }), 30);
    assert.deepEqual(await allKeys(storage()), ['tmpfile']);
  });

  it('refuses deleteMany with an empty prefix or invalid keys', async () => {
    await storage().put('safe', 'x');
    await rejectsWith(storage().deleteMany({ prefix: '' }), 'E_INVALID_ARGUMENT', 'non-empty prefix');
    await rejectsWith(storage().deleteMany(['ok', '../bad']), 'E_INVALID_KEY');
    assert.equal(await storage().exists('safe'), true);
  });

  it('creates with ifNoneMatch "*" when the key is free', async () => {
    const info = await storage().put('c/new', 'v1', { ifNoneMatch: '*' });
    assert.equal(info.size, 2);
  });

  it('refuses ifNoneMatch "*" when the key exists and keeps the content', async () => {
    await storage().put('c/taken', 'original');
    await rejectsWith(storage().put('c/taken', 'other', { ifNoneMatch: '*' }), 'E_ALREADY_EXISTS');
    assert.equal((await storage().get('c/taken')).toString(), 'original');
  });

  it('replaces with a matching ifMatch, quoted or not', async () => {
    const v1 = await storage().put('c/doc', 'v1');
    const v2 = await storage().put('c/doc', 'v2', { ifMatch: v1.etag });
    await storage().put('c/doc', 'v3', { ifMatch: `"${v2.etag}"` });
    assert.equal((await storage().get('c/doc')).toString(), 'v3');
  });

  it('refuses a stale ifMatch and keeps the content', async () => {
    const v1 = await storage().put('c/doc', 'v1');
    await storage().put('c/doc', 'v2');
    await rejectsWith(storage().put('c/doc', 'v3', { ifMatch: v1.etag }), 'E_PRECONDITION_FAILED');
    assert.equal((await storage().get('c/doc')).toString(), 'v2');
  });

  it('refuses ifMatch on a missing key', async () => {
    await rejectsWith(storage().put('c/none', 'x', { ifMatch: 'abc' }), 'E_PRECONDITION_FAILED');
    assert.equal(await storage().exists('c/none'), false);
  });

  it('rejects malformed conditions', async () => {
    await rejectsWith(storage().put('c/x', 'x', { ifNoneMatch: 'abc' as '*' }), 'E_INVALID_ARGUMENT', 'ifNoneMatch');
    await rejectsWith(storage().put('c/x', 'x', { ifNoneMatch: '*', ifMatch: 'a' }), 'E_INVALID_ARGUMENT', 'either');
    await rejectsWith(storage().put('c/x', 'x', { ifMatch: '""' }), 'E_INVALID_ARGUMENT', 'ifMatch');
  });

  it('copies content, content type, metadata and checksum', async () => {
    const src = await storage().put('cp/src.bin', 'payload', { contentType: 'image/webp', metadata: { owner: 'u7' }, cacheControl: 'max-age=5' });
    const copy = await storage().copy('cp/src.bin', 'cp/deeper/dst.bin');
    assert.equal(copy.key, 'cp/deeper/dst.bin');
    assert.equal(copy.contentType, 'image/webp');
    assert.deepEqual(copy.metadata, { owner: 'u7' });
    assert.equal(copy.sha256, src.sha256);
    assert.equal(copy.cacheControl, 'max-age=5');
    assert.equal((await storage().get('cp/deeper/dst.bin')).toString(), 'payload');
    const stat = await storage().stat('cp/deeper/dst.bin');
    assert.deepEqual({ ...stat, lastModified: undefined }, { ...copy, lastModified: undefined });
    assert.equal((await storage().get('cp/src.bin')).toString(), 'payload');
  });

  it('copies over an existing object and onto itself', async () => {
    await storage().put('cp/a', 'a');
    await storage().put('cp/b', 'b');
    await storage().copy('cp/a', 'cp/b');
    assert.equal((await storage().get('cp/b')).toString(), 'a');
    const same = await storage().copy('cp/a', 'cp/a');
    assert.equal(same.sha256, sha256('a'));
    assert.equal((await storage().get('cp/a')).toString(), 'a');
  });

  it('rejects copying or moving a missing object', async () => {
    await rejectsWith(storage().copy('cp/missing', 'cp/to'), 'E_NOT_FOUND');
    await rejectsWith(storage().move('cp/missing', 'cp/to'), 'E_NOT_FOUND');
    assert.equal(await storage().exists('cp/to'), false);
  });

  it('moves with content type, metadata and checksum; the source is gone', async () => {
    const src = await storage().put('mv/from.txt', 'moving', { metadata: { a: 'b' } });
    const moved = await storage().move('mv/from.txt', 'mv/sub/to.txt');
    assert.equal(moved.key, 'mv/sub/to.txt');
    assert.equal(moved.sha256, src.sha256);
    assert.equal(moved.contentType, 'text/plain');
    assert.deepEqual(moved.metadata, { a: 'b' });
    assert.equal(await storage().exists('mv/from.txt'), false);
    assert.equal((await storage().get('mv/sub/to.txt')).toString(), 'moving');
    assert.deepEqual(await allKeys(storage()), ['mv/sub/to.txt']);
  });

  it('moves over an existing object, and onto itself as a no-op', async () => {
    await storage().put('mv/a', 'a');
    await storage().put('mv/b', 'b');
    await storage().move('mv/a', 'mv/b');
    assert.deepEqual(await allKeys(storage()), ['mv/b']);
    assert.equal((await storage().get('mv/b')).toString(), 'a');
    await storage().move('mv/b', 'mv/b');
    assert.equal((await storage().get('mv/b')).toString(), 'a');
  });

  it('issues signed URLs as the capabilities say', async () => {
    const plain = storage();
    if (!plain.capabilities.signedUrls) {
      await rejectsWith(plain.signedUrl('k', { method: 'GET', expiresIn: 60 }), 'E_CONFIG_INVALID', 'signingSecret');
    }
    const signing = await target.create(SIGNING);
    try {
      assert.equal(signing.capabilities.signedUrls, true);
      await signing.put('signed/файл.txt', 'x');
      const before = Date.now();
      const get = await signing.signedUrl('signed/файл.txt', { method: 'GET', expiresIn: 300, download: 'report.txt' });
      assert.equal(get.method, 'GET');
      assert.ok(new URL(get.url));
      assert.ok(Math.abs(get.expiresAt.getTime() - (before + 300_000)) < 5000);
      const put = await signing.signedUrl('signed/up.jpg', { method: 'PUT', expiresIn: 60, contentType: 'image/jpeg', contentLength: 1000 });
      const defaulted = await signing.signedUrl('signed/файл.txt', { method: 'GET' });
      assert.ok(Math.abs(defaulted.expiresAt.getTime() - (Date.now() + 3600_000)) < 5000, 'expiry defaults to one hour');
      assert.equal(put.method, 'PUT');
      assert.equal(put.headers['content-type'], 'image/jpeg');
      assert.equal(put.headers['content-length'], '1000');
      if (!signing.capabilities.nativeSignedUrls) {
        const granted = verifySignedUrl(put.url, { signingSecret: SIGNING.signingSecret as string, method: 'PUT' });
        assert.deepEqual({ ...granted, expiresAt: undefined }, { key: 'signed/up.jpg', method: 'PUT', contentType: 'image/jpeg', maxSize: undefined, contentLength: 1000, download: undefined, responseContentType: undefined, expiresAt: undefined });
      }
    } finally {
      await target.destroy(signing);
    }
  });

  it('rejects signed URL options out of range', async () => {
    const signing = await target.create(SIGNING);
    try {
      await rejectsWith(signing.signedUrl('k', { method: 'GET', expiresIn: 0 }), 'E_INVALID_ARGUMENT', 'expiresIn');
      await rejectsWith(signing.signedUrl('k', { method: 'GET', expiresIn: 8 * 24 * 3600 }), 'E_INVALID_ARGUMENT', '7 days');
      await rejectsWith(signing.signedUrl('k', { method: 'DELETE' as 'GET', expiresIn: 60 }), 'E_INVALID_ARGUMENT', 'method');
      await rejectsWith(signing.signedUrl('k', { method: 'PUT', responseContentType: 'text/plain' }), 'E_INVALID_ARGUMENT', 'GET');
      await rejectsWith(signing.signedUrl('k', { method: 'GET', responseContentType: 'not a type' }), 'E_INVALID_ARGUMENT', 'responseContentType');
      await rejectsWith(signing.signedUrl('../k', { method: 'GET', expiresIn: 60 }), 'E_INVALID_KEY');
    } finally {
      await target.destroy(signing);
    }
  });

  it('reports health and capabilities', async () => {
    const health = await storage().health();
    assert.equal(health.ok, true);
    assert.equal(health.backend, storage().backend);
    assert.ok(Number.isFinite(health.latencyMs) && health.latencyMs >= 0);
    const caps = storage().capabilities;
    for (const flag of ['signedUrls', 'conditionalWrites', 'rangeReads', 'keyIsPrefix'] as const) assert.equal(typeof caps[flag], 'boolean');
  });
}
