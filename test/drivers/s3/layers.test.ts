/**
 * The S3 driver through layers, on the real RGW: after the documented
 * `storage.withDriver(d => withMetrics(d, m))`, multipart uploads left behind are still
 * listed and aborted, and a copy between two S3 storages of one service is still done by
 * the service, whichever side (or both) is wrapped, and through a stack of layers. The
 * fallback driver passes both on to an S3 primary.
 */
import assert from 'node:assert/strict';
import { CreateMultipartUploadCommand } from '@aws-sdk/client-s3';
import { after, before, describe, it } from 'node:test';
import { Registry } from 'prom-client';
import { createStorage, DriverLayer, storageMetrics, withMetrics, type IncompleteUpload, type S3Driver, type Storage, type StorageMetrics } from '../../../src/index.js';
import { emptyStorage, freshS3Storage, rawS3Client } from './env.js';

let source: Storage;
let target: Storage;
let registry: Registry;
let metrics: StorageMetrics;
/** Starts counting afresh, in a registry of its own. */
function resetMetrics(): void {
  registry = new Registry();
  metrics = storageMetrics(registry);
}
const measured = (storage: Storage) => storage.withDriver((d) => withMetrics(d, metrics));

before(async () => {
  source = await freshS3Storage('layers-src');
  target = await freshS3Storage('layers-dst');
});
after(async () => {
  for (const storage of [source, target]) if (storage) await emptyStorage(storage);
});

describe('s3 through the metrics layer', () => {
  /** Starts a multipart upload behind Stowage's back and leaves it, as a crashed client would. */
  async function leaveUpload(key: string): Promise<IncompleteUpload> {
    const client = rawS3Client();
    try {
      const started = await client.send(new CreateMultipartUploadCommand({ Bucket: (source.driver as S3Driver).options.bucket, Key: key }));
      return { key, uploadId: started.UploadId ?? '', initiated: new Date() };
    } finally {
      client.destroy();
    }
  }

  /** The count samples of the latency histogram for `operation` on s3. */
  async function counted(operation: string): Promise<string[]> {
    const text = await registry.getSingleMetricAsString('stowage_storage_operation_seconds');
    return text.split('\n').filter((l) => l.includes('_count') && l.includes(`operation="${operation}"`) && l.includes('backend="s3"'));
  }

  it('lists incomplete multipart uploads', async () => {
    resetMetrics();
    const left = await leaveUpload('pending/listed.bin');
    const uploads = await measured(source).incompleteUploads({ prefix: 'pending/listed' });
    assert.deepEqual(uploads.map((u) => [u.key, u.uploadId]), [[left.key, left.uploadId]]);
    assert.equal((await counted('incompleteUploads')).length, 1, 'the listing is measured');
    await source.abortUpload(left);
  });

  it('aborts an incomplete multipart upload', async () => {
    resetMetrics();
    const left = await leaveUpload('pending/aborted.bin');
    await measured(source).abortUpload(left);
    assert.deepEqual(await source.incompleteUploads({ prefix: 'pending/aborted' }), [], 'the upload is gone');
    assert.equal((await counted('abortUpload')).length, 1, 'the abort is measured');
  });

  it('copies between two S3 storages of one service inside the service, wrapped on either side or both', async () => {
    resetMetrics();
    await source.put('photos/a.jpg', 'jpeg bytes', { contentType: 'image/jpeg', metadata: { owner: 'ann' } });
    const original = await source.stat('photos/a.jpg');
    const pairs: [string, Storage, Storage][] = [
      ['target measured', measured(target), source],
      ['source measured', target, measured(source)],
      ['both measured', measured(target), measured(source)],
      ['a stack of layers on both', measured(target.withDriver((d) => new DriverLayer(d))), measured(source).withDriver((d) => new DriverLayer(d))],
    ];
    for (const [label, to, from] of pairs) {
      const copied = await to.copyFrom(from, 'photos/a.jpg', `copies/${label}.jpg`);
      assert.equal(copied.copiedBy, 'service', label);
      const stored = await target.stat(`copies/${label}.jpg`);
      assert.deepEqual([stored.sha256, stored.contentType, stored.metadata], [original.sha256, 'image/jpeg', { owner: 'ann' }], label);
    }
    const counted = await registry.getSingleMetricAsString('stowage_storage_operation_seconds');
    assert.match(counted, /_count\{backend="s3",operation="copyFrom",outcome="ok"\} [1-9]/, 'the copy is measured');
  });

  it('streams from a storage that is not on the service', async () => {
    resetMetrics();
    const memory = createStorage({ driver: 'memory' });
    await memory.put('m.txt', 'from memory');
    assert.equal((await measured(target).copyFrom(memory.withDriver((d) => new DriverLayer(d)), 'm.txt')).copiedBy, 'stream');
    assert.equal((await target.get('m.txt')).toString(), 'from memory');
  });
});

describe('s3 as the primary of a fallback storage', () => {
  it('lists and aborts its incomplete uploads, and copies into it inside the service', async () => {
    const hybrid = createStorage({ driver: 'fallback', primary: target, secondary: createStorage({ driver: 'memory' }) });
    const client = rawS3Client();
    try {
      const started = await client.send(new CreateMultipartUploadCommand({ Bucket: (target.driver as S3Driver).options.bucket, Key: 'hybrid/left.bin' }));
      const uploads = await hybrid.incompleteUploads({ prefix: 'hybrid/' });
      assert.deepEqual(uploads.map((u) => u.uploadId), [started.UploadId]);
      await hybrid.abortUpload(uploads[0] as (typeof uploads)[number]);
      assert.deepEqual(await target.incompleteUploads({ prefix: 'hybrid/' }), []);
    } finally {
      client.destroy();
    }
    await source.put('hybrid/a.txt', 'into the fallback');
    assert.equal((await hybrid.copyFrom(source, 'hybrid/a.txt')).copiedBy, 'service');
    assert.equal((await target.get('hybrid/a.txt')).toString(), 'into the fallback');
  });
});
