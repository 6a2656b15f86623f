/**
 * Lifecycle rules against real Ceph RGW: an abandoned multipart upload and an old upload
 * session are aborted (their parts freed), young ones kept; objects expire by age and
 * orphans go, through S3's listing and batched DeleteObjects.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { CreateMultipartUploadCommand, ListMultipartUploadsCommand, UploadPartCommand } from '@aws-sdk/client-s3';
import { runLifecycle, type Storage } from '../../src/index.js';
import { emptyStorage, freshS3Storage, rawS3Client } from '../drivers/s3/env.js';

const HOUR = 3_600_000;
let storage: Storage;
let dir: string;

before(async () => {
  storage = await freshS3Storage('lifecycle');
  dir = await mkdtemp(join(tmpdir(), 'stowage-lifecycle-s3-'));
});
after(async () => {
  await emptyStorage(storage);
  await rm(dir, { recursive: true, force: true });
});

describe('lifecycle on S3 (RGW)', () => {
  it('aborts old multipart uploads and upload sessions, keeping young ones and those outside the prefix', async () => {
    const bucket = storage.driver.location()?.bucket as string;
    const raw = rawS3Client();
    try {
      const { UploadId } = await raw.send(new CreateMultipartUploadCommand({ Bucket: bucket, Key: 'videos/abandoned.mp4' }));
      await raw.send(new UploadPartCommand({ Bucket: bucket, Key: 'videos/abandoned.mp4', UploadId, PartNumber: 1, Body: randomBytes(5 * 1024 * 1024) }));
      const { UploadId: otherId } = await raw.send(new CreateMultipartUploadCommand({ Bucket: bucket, Key: 'other/abandoned.mp4' }));
      const session = await storage.sessions.create('videos/resumable.bin');
      await storage.sessions.write(session.id, 0, randomBytes(6 * 1024 * 1024));
      const rules = [{ prefix: 'videos/', abortIncompleteAfter: '2h' }];
      const young = await runLifecycle(storage, rules, { dryRun: false });
      assert.deepEqual(young.rules[0]?.totals, {}, 'nothing is two hours old yet');
      const later = new Date(Date.now() + 3 * HOUR);
      const dry = await runLifecycle(storage, rules, { dryRun: true, now: later });
      assert.deepEqual(dry.rules[0]?.items.map((i) => [i.action, i.key, i.uploadId ?? i.sessionId]), [
        ['abort_upload', 'videos/abandoned.mp4', UploadId],
        ['abort_session', 'videos/resumable.bin', session.id],
      ]);
      assert.equal(dry.rules[0]?.totals.abort_session?.bytes, 6 * 1024 * 1024);
      assert.equal((await storage.sessions.get(session.id)).offset, 6 * 1024 * 1024, 'a dry run aborts nothing');
      const real = await runLifecycle(storage, rules, { dryRun: false, now: later });
      assert.deepEqual(real.rules[0]?.totals, { abort_upload: { objects: 1, bytes: 0 }, abort_session: { objects: 1, bytes: 6 * 1024 * 1024 } });
      const left = await raw.send(new ListMultipartUploadsCommand({ Bucket: bucket }));
      assert.deepEqual((left.Uploads ?? []).map((u) => u.UploadId), [otherId], "the session's parts are freed too; other/ is outside the prefix");
      await assert.rejects(storage.sessions.get(session.id), { code: 'E_NOT_FOUND' });
    } finally {
      raw.destroy();
    }
  });

  it('expires objects by age and deletes orphans, in batches over listed pages', async () => {
    const count = 1050;
    for (let i = 0; i < count; i += 50) await Promise.all(Array.from({ length: 50 }, (_, j) => storage.put(`temp/${String(i + j).padStart(4, '0')}`, 'ab')));
    await storage.put('photos/used.jpg', 'u');
    await storage.put('photos/orphan.jpg', 'orphan');
    const keep = join(dir, 'keep.txt');
    await writeFile(keep, 'photos/used.jpg\n');
    const report = await runLifecycle(storage, [{ prefix: 'temp/', expireAfter: '1h' }, { prefix: 'photos/', orphans: { keep, minAge: '1h' } }], { dryRun: false, now: new Date(Date.now() + 2 * HOUR) });
    assert.deepEqual(report.rules.map((r) => [r.totals, r.error]), [[{ expire: { objects: count, bytes: 2 * count } }, undefined], [{ orphan: { objects: 1, bytes: 6 } }, undefined]]);
    assert.deepEqual(await storage.usage({ prefix: 'temp/' }), { objects: 0, bytes: 0 });
    assert.deepEqual([await storage.exists('photos/used.jpg'), await storage.exists('photos/orphan.jpg')], [true, false]);
  });
});
