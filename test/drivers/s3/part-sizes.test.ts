/**
 * Unit tests of the part-size schedule: bodies of unknown size fit each provider's part
 * limit (AWS 10,000 parts, Scaleway 1,000, R2 equal parts), files get equal parts that
 * fit, and the driver's options and capabilities follow the profile. On RGW: a stream
 * past partSize x maxParts still fits by growing its parts, and with equal parts (the R2
 * profile) it fails with E_TOO_LARGE, storing nothing.
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { describe, it } from 'node:test';
import { ListMultipartUploadsCommand } from '@aws-sdk/client-s3';
import { resolveS3Options } from '../../../src/drivers/s3/options.js';
import { PartSchedule, equalPartSize } from '../../../src/drivers/s3/part-sizes.js';
import { S3Driver, StorageError, createStorage } from '../../../src/index.js';
import { rejectsWith } from '../../conformance/harness.js';
import { emptyStorage, freshS3Storage, rawS3Client } from './env.js';

const MiB = 1024 * 1024;
const GiB = 1024 * MiB;
const TiB = 1024 * GiB;

/** How many parts the schedule cuts a body of `size` into, and the sizes of all but the last. */
function cut(schedule: PartSchedule, size: number): { parts: number; sizes: number[] } {
  const sizes: number[] = [];
  let left = size;
  let n = 1;
  while (left > schedule.sizeOf(n)) {
    sizes.push(schedule.sizeOf(n));
    left -= schedule.sizeOf(n);
    n++;
  }
  return { parts: n, sizes };
}

describe('part sizes of bodies of unknown size', () => {
  it('AWS: 8 MiB parts for the first 1,000, doubling every 1,000 parts, 5 TiB within 10,000 parts', () => {
    const s = new PartSchedule({ partSize: 8 * MiB, maxParts: 10_000, equalParts: false, provider: 'aws' });
    assert.equal(s.sizeOf(1), 8 * MiB);
    assert.equal(s.sizeOf(1000), 8 * MiB);
    assert.equal(s.sizeOf(1001), 16 * MiB);
    assert.equal(s.sizeOf(2001), 32 * MiB);
    assert.equal(s.sizeOf(10_000), 4 * GiB);
    assert.equal(s.capacity, 1000 * 8 * MiB * 1023);
    assert.ok(s.capacity >= 5 * TiB, 'S3\'s largest object fits');
    // A body of 1 GiB uses 128 parts of 8 MiB: small bodies keep small parts.
    assert.deepEqual(new Set(cut(s, GiB).sizes), new Set([8 * MiB]));
    assert.ok(cut(s, 5 * TiB).parts <= 10_000);
    assert.ok(cut(s, s.capacity).parts <= 10_000);
  });

  it('Scaleway: 1,000 parts, doubling every 100, sizes that only grow and never pass 5 GiB', () => {
    const s = new PartSchedule({ partSize: 8 * MiB, maxParts: 1000, equalParts: false, provider: 'scaleway' });
    assert.equal(s.sizeOf(100), 8 * MiB);
    assert.equal(s.sizeOf(101), 16 * MiB);
    assert.equal(s.capacity, 100 * 8 * MiB * 1023);
    assert.ok(cut(s, 500 * GiB).parts <= 1000, 'a 500 GiB stream fits 1,000 parts');
    for (let n = 2; n <= 1000; n++) assert.ok(s.sizeOf(n) >= s.sizeOf(n - 1));
    // The old fixed 8 MiB parts held 7.8 GiB on Scaleway.
    assert.ok(s.capacity > 1000 * 8 * MiB * 100);
  });

  it('caps parts at 5 GiB', () => {
    const s = new PartSchedule({ partSize: GiB, maxParts: 10_000, equalParts: false, provider: 'aws' });
    assert.equal(s.sizeOf(3001), 5 * GiB);
    assert.equal(s.sizeOf(10_000), 5 * GiB);
  });

  it('R2: equal parts of partSize, and past partSize x maxParts an E_TOO_LARGE naming the limit and the fix', () => {
    const s = new PartSchedule({ partSize: 8 * MiB, maxParts: 10_000, equalParts: true, provider: 'r2' });
    assert.equal(s.sizeOf(1), 8 * MiB);
    assert.equal(s.sizeOf(9999), 8 * MiB);
    assert.equal(s.capacity, 10_000 * 8 * MiB);
    const err = s.tooLarge();
    assert.ok(err instanceof StorageError);
    assert.equal(err.code, 'E_TOO_LARGE');
    assert.match(err.message, /r2 needs equal parts/);
    assert.match(err.message, /10000 parts of partSize 8388608 bytes = 83886080000 bytes/);
    assert.match(err.message, /raise partSize/);
  });

  it('a tiny limit still grows: 4 parts from 5 MiB hold 75 MiB', () => {
    const s = new PartSchedule({ partSize: 5 * MiB, maxParts: 4, equalParts: false, provider: 'ceph' });
    assert.deepEqual([1, 2, 3, 4].map((n) => s.sizeOf(n) / MiB), [5, 10, 20, 40]);
    assert.equal(s.capacity, 75 * MiB);
  });
});

describe('part sizes of files', () => {
  it('keeps partSize while it fits, else the smallest whole MiB that fits, else E_TOO_LARGE', () => {
    assert.equal(equalPartSize(GiB, 8 * MiB, 10_000), 8 * MiB);
    assert.equal(equalPartSize(100 * GiB, 8 * MiB, 10_000), 11 * MiB);
    assert.equal(equalPartSize(100 * GiB, 8 * MiB, 1000), 103 * MiB);
    assert.ok(Math.ceil(100 * GiB / equalPartSize(100 * GiB, 8 * MiB, 1000)) <= 1000);
    assert.throws(() => equalPartSize(6 * TiB, 8 * MiB, 1000), (e: unknown) => e instanceof StorageError && e.code === 'E_TOO_LARGE');
  });
});

describe('the driver and its options', () => {
  it('maxParts defaults to the profile and may only be lowered; maxObjectSize is the schedule\'s capacity', () => {
    assert.equal(resolveS3Options({ bucket: 'b-1' }).maxParts, 10_000);
    assert.equal(resolveS3Options({ bucket: 'b-1', provider: 'scaleway', region: 'fr-par' }).maxParts, 1000);
    assert.equal(resolveS3Options({ bucket: 'b-1', maxParts: 50 }).maxParts, 50);
    assert.throws(() => resolveS3Options({ bucket: 'b-1', provider: 'scaleway', region: 'fr-par', maxParts: 2000 }), /maxParts must be a whole number from 1 to 1000/);
    const scaleway = new S3Driver({ bucket: 'b-1', provider: 'scaleway', region: 'fr-par', accessKeyId: 'a', secretAccessKey: 'b' });
    assert.equal(scaleway.capabilities.maxObjectSize, 100 * 8 * MiB * 1023);
    assert.equal(scaleway.capabilities.nativePutFile, true);
    const r2 = new S3Driver({ bucket: 'b-1', provider: 'r2', accountId: 'a', accessKeyId: 'a', secretAccessKey: 'b', partSize: 16 * MiB });
    assert.equal(r2.capabilities.maxObjectSize, 10_000 * 16 * MiB);
  });
});

/** A stream of unknown length: `mib` MiB of random bytes, 1 MiB a chunk, and its digest. */
function stream(mib: number): { body: Readable; sha256: string } {
  const data = randomBytes(mib * MiB);
  return { body: Readable.from(Array.from({ length: mib }, (_, i) => data.subarray(i * MiB, (i + 1) * MiB))), sha256: createHash('sha256').update(data).digest('hex') };
}

describe('part sizes on RGW', () => {
  it('a stream larger than partSize x maxParts fits by growing parts: 30 MiB in 3 parts from 5 MiB', async () => {
    const storage = await freshS3Storage('parts', { partSize: 5 * MiB, multipartThreshold: 5 * MiB, maxParts: 3 });
    const { body, sha256 } = stream(30);
    const info = await storage.put('big/stream.bin', body);
    const stat = await storage.stat('big/stream.bin');
    assert.deepEqual({ size: stat.size, sha256: stat.sha256 }, { size: 30 * MiB, sha256 });
    assert.equal(info.sha256, sha256);
    assert.match(stat.etag, /-3$/, 'a multipart ETag of three parts');
    await emptyStorage(storage);
  });

  it('with equal parts (the R2 profile) a stream past partSize x maxParts is E_TOO_LARGE, and nothing is left', async () => {
    const ceph = await freshS3Storage('parts-r2');
    const bucket = (ceph.driver as S3Driver).options.bucket;
    const { endpoint, credentials } = (ceph.driver as S3Driver).options;
    const r2 = createStorage({ driver: 's3', bucket, endpoint, credentials, provider: 'r2', region: 'us-east-1', partSize: 5 * MiB, multipartThreshold: 5 * MiB, maxParts: 2 });
    const err = await rejectsWith(r2.put('big/r2.bin', stream(15).body), 'E_TOO_LARGE', /r2 needs equal parts.*2 parts of partSize 5242880 bytes = 10485760 bytes.*raise partSize/);
    assert.equal(err.details?.capacity, 10 * MiB);
    assert.equal(await ceph.exists('big/r2.bin'), false);
    const client = rawS3Client();
    const open = await client.send(new ListMultipartUploadsCommand({ Bucket: bucket }));
    client.destroy();
    assert.equal(open.Uploads?.length ?? 0, 0, 'the upload was aborted');
    await r2.close();
    await emptyStorage(ceph);
  });
});
