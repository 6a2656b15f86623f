/** Conformance cases for concurrent writers: whole versions only, atomic create-only writes. */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { it } from 'node:test';
import { isStorageError } from '../../src/index.js';
import { sha256 } from './harness.js';
import type { StorageGetter } from './suite.js';

/** Streams `data` in small pieces with pauses, so concurrent writers really interleave. */
function trickle(data: Buffer): Readable {
  async function* gen() {
    for (let at = 0; at < data.length; at += 16 * 1024) {
      yield data.subarray(at, at + 16 * 1024);
      await new Promise((r) => setImmediate(r));
    }
  }
  return Readable.from(gen());
}

export function concurrencyCases(storage: StorageGetter): void {
  it('ends 50 concurrent writers to one key with one whole version', async () => {
    const bodies = Array.from({ length: 50 }, (_, i) => Buffer.concat([Buffer.from(`writer ${i}:`), randomBytes(200 * 1024 + i * 997)]));
    const digests = new Set(bodies.map((b) => sha256(b)));
    const results = await Promise.all(bodies.map((body, i) => storage().put('contended', trickle(body), { metadata: { writer: String(i) } })));
    assert.equal(results.length, 50);
    const stored = await storage().get('contended');
    const info = await storage().stat('contended');
    const digest = sha256(stored);
    assert.ok(digests.has(digest), 'the stored bytes are exactly one writer\'s body');
    assert.equal(info.sha256, digest, 'the stored checksum describes the stored bytes');
    assert.equal(info.size, stored.length);
    const writer = Number(info.metadata.writer);
    assert.equal(sha256(bodies[writer] as Buffer), digest, 'metadata belongs to the same writer as the bytes');
    assert.deepEqual((await storage().list()).objects.map((o) => o.key), ['contended']);
  });

  it('lets exactly one of 20 concurrent create-only writers win', async () => {
    const outcomes = await Promise.allSettled(
      Array.from({ length: 20 }, (_, i) => storage().put('once', trickle(Buffer.alloc(64 * 1024, i)), { ifNoneMatch: '*' })),
    );
    const won = outcomes.filter((o) => o.status === 'fulfilled');
    const lost = outcomes.filter((o) => o.status === 'rejected');
    assert.equal(won.length, 1);
    assert.ok(lost.every((o) => isStorageError(o.reason, 'E_ALREADY_EXISTS')));
    const stored = await storage().get('once');
    assert.equal(stored.length, 64 * 1024);
    assert.equal(new Set(stored).size, 1);
  });

  it('always returns info that describes the bytes read, while the key is overwritten', async () => {
    await storage().put('racing', randomBytes(1000));
    let writing = true;
    const writer = (async () => {
      for (let i = 0; i < 60; i++) await storage().put('racing', randomBytes(1000 + (i % 7) * 13));
      writing = false;
    })();
    let reads = 0;
    while (writing) {
      const { stream, info } = await storage().getStream('racing');
      const chunks: Buffer[] = [];
      for await (const chunk of stream) chunks.push(chunk as Buffer);
      const data = Buffer.concat(chunks);
      assert.equal(info.size, data.length);
      assert.equal(info.sha256, sha256(data));
      reads++;
    }
    await writer;
    assert.ok(reads > 0);
  });

  it('handles many concurrent writes, reads and deletes on different keys', async () => {
    const keys = Array.from({ length: 200 }, (_, i) => `par/${i % 10}/${i}`);
    await Promise.all(keys.map((k) => storage().put(k, k)));
    const reads = await Promise.all(keys.map((k) => storage().get(k)));
    assert.deepEqual(reads.map(String), keys);
    await Promise.all(keys.filter((_, i) => i % 2 === 0).map((k) => storage().delete(k)));
    assert.equal((await storage().usage({ prefix: 'par/' })).objects, 100);
  });
}
