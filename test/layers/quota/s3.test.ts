/**
 * The quota layer on the real RGW, with the embedded store in a local folder and with
 * Redis: racing writes never pass a limit, a multipart upload of a file reserves its size
 * before its first part, sessions account on completion and on concatenation, a presigned PUT larger than the
 * room is refused and a POST form's content-length-range is capped by it (RGW itself then
 * refuses more), and an S3-direct upload is counted by the next reconcile.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { createStorage, isStorageError, quotaOf, type QuotaControl, type QuotaRules, type Storage } from '../../../src/index.js';
import { rejectsWith } from '../../conformance/harness.js';
import { emptyStorage, s3Options, uniqueBucket } from '../../drivers/s3/env.js';
import { bytes, used } from './helpers.js';

const RULES: QuotaRules = { 'users/*/': { maxBytes: 20 * 1024 * 1024, maxObjects: 50 } };

for (const kind of ['embedded', 'redis'] as const) {
  describe(`quota layer on RGW (${kind} store)`, () => {
    let storage: Storage;
    let control: QuotaControl;
    let dir: string;

    before(async () => {
      dir = await mkdtemp(join(tmpdir(), 'stowage-quota-s3-'));
      const redisUrl = process.env.STOWAGE_TEST_REDIS_URL;
      if (kind === 'redis' && !redisUrl) throw new Error('no Redis for the tests: run them with scripts/run-tests.mjs, which starts one, or set STOWAGE_TEST_REDIS_URL');
      const bucket = uniqueBucket(`quota-${kind}`);
      // Each run its own Redis namespace is its own bucket's: the counters of one bucket.
      const store = kind === 'redis' ? { redisUrl: `${redisUrl}/3` } : { dir };
      storage = createStorage({ driver: 's3', ...s3Options(bucket), quotas: { rules: RULES, log: () => undefined, ...store } });
      await storage.verify({ createBucket: true });
      control = quotaOf(storage.driver) as QuotaControl;
      // A Redis database shared with earlier runs: start from what this bucket holds (nothing).
      await control.reconcile();
    });
    after(async () => {
      await emptyStorage(storage);
      await rm(dir, { recursive: true, force: true });
    });

    it('lets exactly as many racing writes through as fit', async () => {
      const results = await Promise.allSettled(Array.from({ length: 30 }, (_, i) => storage.put(`users/race/${i}`, bytes(1024 * 1024))));
      assert.equal(results.filter((r) => r.status === 'fulfilled').length, 20);
      for (const r of results) if (r.status === 'rejected') assert.ok(isStorageError(r.reason, 'E_QUOTA_EXCEEDED'), String(r.reason));
      assert.equal((await storage.usage({ prefix: 'users/race/' })).objects, 20);
      assert.deepEqual(await used(control, 'users/race/', 'users/*/'), { bytes: 20 * 1024 * 1024, objects: 20, reservedBytes: 0 });
    });

    it('refuses a multipart upload of a file that cannot fit before its first part, and counts one that does', async () => {
      const file = join(dir, 'big.bin');
      await writeFile(file, bytes(21 * 1024 * 1024));
      await rejectsWith(storage.putFile('users/files/big.bin', file), 'E_QUOTA_EXCEEDED');
      assert.deepEqual(await storage.driver.incompleteUploads('users/files/'), []);
      await writeFile(file, bytes(12 * 1024 * 1024));
      await storage.putFile('users/files/big.bin', file);
      assert.deepEqual(await used(control, 'users/files/', 'users/*/'), { bytes: 12 * 1024 * 1024, objects: 1, reservedBytes: 0 });
    });

    it('reserves a session’s size and counts the object it completes', async () => {
      const session = await storage.sessions.create('users/sess/a.bin', { size: 15 * 1024 * 1024 });
      await rejectsWith(storage.put('users/sess/b.bin', bytes(6 * 1024 * 1024)), 'E_QUOTA_EXCEEDED');
      await storage.sessions.write(session.id, 0, bytes(15 * 1024 * 1024));
      await storage.sessions.complete(session.id);
      assert.deepEqual(await used(control, 'users/sess/', 'users/*/'), { bytes: 15 * 1024 * 1024, objects: 1, reservedBytes: 0 });
    });

    it('counts a concatenation of partial sessions against their reservations, not twice', async () => {
      const mib = 1024 * 1024;
      const parts = [await storage.sessions.create('users/cat/p1', { size: 8 * mib, partial: true }), await storage.sessions.create('users/cat/p2', { size: 8 * mib, partial: true })];
      await storage.sessions.write(parts[0]!.id, 0, bytes(8 * mib, 'a'));
      await storage.sessions.write(parts[1]!.id, 0, bytes(8 * mib, 'b'));
      // 16 of 20 MiB are reserved for these bytes: joining them takes no more room.
      await storage.sessions.concat('users/cat/joined.bin', parts.map((p) => p.id));
      assert.deepEqual(await used(control, 'users/cat/', 'users/*/'), { bytes: 16 * mib, objects: 1, reservedBytes: 0 });
      assert.equal((await storage.stat('users/cat/joined.bin')).size, 16 * mib);
    });

    it('refuses to presign a PUT larger than the room, caps a POST form by it, and counts S3-direct uploads at reconcile', async () => {
      await storage.put('users/direct/a.bin', bytes(19 * 1024 * 1024));
      await rejectsWith(storage.signedUrl('users/direct/b.bin', { method: 'PUT', contentLength: 2 * 1024 * 1024 }), 'E_QUOTA_EXCEEDED');
      await rejectsWith(storage.signedUrl('users/direct/b.bin', { method: 'PUT' }), 'E_INVALID_ARGUMENT');
      const post = await storage.presignPost('users/direct/b.bin', { maxSize: 100 * 1024 * 1024 });
      const send = async (size: number) => {
        const form = new FormData();
        for (const [k, v] of Object.entries(post.fields)) form.append(k, v);
        form.append('file', new Blob([bytes(size)]), 'b.bin');
        return fetch(post.url, { method: 'POST', body: form });
      };
      const tooBig = await send(1024 * 1024 + 1);
      assert.equal(tooBig.status, 400);
      assert.match(await tooBig.text(), /EntityTooLarge/);
      assert.ok([200, 201, 204].includes((await send(1024 * 1024)).status));
      // The form went straight to RGW: the counters learn of it at the next reconcile.
      assert.equal((await used(control, 'users/direct/', 'users/*/')).bytes, 19 * 1024 * 1024);
      const report = await control.reconcile();
      assert.deepEqual(report.drift.map((d) => [d.prefix, d.listed.bytes]), [['users/direct/', 20 * 1024 * 1024]]);
      assert.equal((await used(control, 'users/direct/', 'users/*/')).bytes, 20 * 1024 * 1024);
    });
  });
}
