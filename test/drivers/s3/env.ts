/**
 * The S3 endpoint the tests use: the RGW that scripts/run-tests.mjs started, or the
 * one named by STOWAGE_TEST_S3_ENDPOINT. Missing configuration is an error with the
 * reason, so S3 tests fail loudly instead of being skipped.
 */
import { randomBytes } from 'node:crypto';
import { AbortMultipartUploadCommand, DeleteBucketCommand, DeleteObjectsCommand, ListMultipartUploadsCommand, ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3';
import { createStorage, type S3DriverOptions, type Storage } from '../../../src/index.js';

/** Connection settings of the test endpoint. */
export interface S3TestEnv {
  endpoint: string;
  accessKeyId: string;
  secretAccessKey: string;
  region: string;
}

/** Reads the test endpoint from the environment, or throws saying how to get one. */
export function s3TestEnv(): S3TestEnv {
  const { STOWAGE_TEST_S3_ENDPOINT: endpoint, STOWAGE_TEST_S3_ACCESS_KEY: accessKeyId, STOWAGE_TEST_S3_SECRET_KEY: secretAccessKey } = process.env;
  if (!endpoint || !accessKeyId || !secretAccessKey) {
    throw new Error(
      process.env.STOWAGE_TEST_S3_ERROR ??
        'no S3 endpoint for the tests: run them with `npm test` (which starts Ceph RGW), or set STOWAGE_TEST_S3_ENDPOINT, STOWAGE_TEST_S3_ACCESS_KEY and STOWAGE_TEST_S3_SECRET_KEY',
    );
  }
  return { endpoint, accessKeyId, secretAccessKey, region: process.env.STOWAGE_TEST_S3_REGION ?? 'us-east-1' };
}

/** A bucket name no earlier run used. */
export function uniqueBucket(label: string): string {
  return `stowage-${label}-${Date.now().toString(36)}-${randomBytes(3).toString('hex')}`;
}

/** Options for an S3 storage on the test endpoint. */
export function s3Options(bucket: string, extra: Partial<S3DriverOptions> = {}): S3DriverOptions {
  const env = s3TestEnv();
  return { bucket, endpoint: env.endpoint, region: env.region, accessKeyId: env.accessKeyId, secretAccessKey: env.secretAccessKey, provider: 'ceph', ...extra };
}

/** A storage on a new bucket of the test endpoint (created through verify). */
export async function freshS3Storage(label: string, extra: Partial<S3DriverOptions> = {}): Promise<Storage> {
  const storage = createStorage({ driver: 's3', ...s3Options(uniqueBucket(label), extra) });
  await storage.verify({ createBucket: true });
  return storage;
}

/**
 * Deletes every object under the storage's prefix, then the bucket, with everything
 * left in it: the test RGW is shared and long-lived, and refuses new buckets past a
 * thousand (TooManyBuckets), so a test must not leave its bucket behind.
 */
export async function emptyStorage(storage: Storage): Promise<void> {
  const keys: string[] = [];
  for await (const info of storage.listAll()) keys.push(info.key);
  await storage.deleteMany(keys);
  const bucket = storage.driver.location()?.bucket;
  await storage.close();
  if (bucket) await removeBucket(bucket);
}

/** Removes a test bucket: aborts its uploads, deletes every object (Stowage's own under .stowage/ too), then the bucket. */
export async function removeBucket(bucket: string): Promise<void> {
  const client = rawS3Client();
  try {
    const uploads = await client.send(new ListMultipartUploadsCommand({ Bucket: bucket }));
    for (const u of uploads.Uploads ?? []) await client.send(new AbortMultipartUploadCommand({ Bucket: bucket, Key: u.Key, UploadId: u.UploadId }));
    for (;;) {
      const page = await client.send(new ListObjectsV2Command({ Bucket: bucket }));
      if ((page.KeyCount ?? 0) === 0) break;
      await client.send(new DeleteObjectsCommand({ Bucket: bucket, Delete: { Objects: (page.Contents ?? []).map((o) => ({ Key: o.Key })) } }));
    }
    await client.send(new DeleteBucketCommand({ Bucket: bucket }));
  } finally {
    client.destroy();
  }
}

/** A plain SDK client on the test endpoint, for looking behind Stowage's back (checksums as RGW needs them). */
export function rawS3Client(): S3Client {
  const env = s3TestEnv();
  return new S3Client({ endpoint: env.endpoint, region: env.region, forcePathStyle: true, credentials: env, requestChecksumCalculation: 'WHEN_REQUIRED', responseChecksumValidation: 'WHEN_REQUIRED' });
}
