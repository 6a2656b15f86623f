/**
 * The start-up check: HeadBucket, and CreateBucket when allowed. Wrong endpoint, wrong
 * keys and a missing bucket each get their own message saying what to fix.
 */
import type { BucketLocationConstraint } from '@aws-sdk/client-s3';
import { StorageError, errorMessage, isStorageError } from '../../core/errors.js';
import type { VerifyOptions } from '../../core/types.js';
import type { S3Call } from './multipart.js';
import type { ResolvedS3Options } from './options.js';
import { s3 } from './sdk.js';

/** Where the bucket is looked for, and in which region: the options', or those of the caller's client. */
async function targetOf(o: ResolvedS3Options): Promise<{ where: string; region: string }> {
  const config = o.client?.config;
  if (!config) return { where: o.endpoint ?? `AWS S3 (${o.region})`, region: o.region };
  const region = await config.region().catch((err: unknown) => {
    throw new StorageError('E_CONFIG_INVALID', `the S3 client given to Stowage has no region: ${errorMessage(err)}`, { cause: err });
  });
  const endpoint = config.isCustomEndpoint ? await config.endpoint?.() : undefined;
  const where = endpoint ? `${endpoint.protocol}//${endpoint.hostname}${endpoint.port ? `:${endpoint.port}` : ''}${endpoint.path.replace(/\/$/, '')}` : `AWS S3 (${region})`;
  return { where: `${where} (your S3 client)`, region };
}

/** Checks the bucket is reachable with these credentials; returns facts for health reports. */
export async function verifyBucket(call: S3Call, o: ResolvedS3Options, opts: VerifyOptions): Promise<Record<string, unknown>> {
  const { where, region } = await targetOf(o);
  const facts = { bucket: o.bucket, endpoint: where, region, provider: o.provider, prefix: o.prefix || undefined };
  try {
    await call('check bucket', (c) => c.send(new (s3().HeadBucketCommand)({ Bucket: o.bucket })));
    return facts;
  } catch (err) {
    if (!(err instanceof StorageError)) throw err;
    if (err.code === 'E_NOT_FOUND' || err.code === 'E_BUCKET_NOT_FOUND') {
      if (!opts.createBucket) {
        throw new StorageError('E_BUCKET_NOT_FOUND', `bucket "${o.bucket}" does not exist at ${where}: create it, or call verify({ createBucket: true })`, { cause: err });
      }
      await createBucket(call, o, region);
      return { ...facts, created: true };
    }
    if (err.code === 'E_ACCESS_DENIED') {
      throw new StorageError(
        'E_ACCESS_DENIED',
        `${where} refused access to bucket "${o.bucket}": check the access key and secret (STORAGE_S3_ACCESS_KEY, STORAGE_S3_SECRET_KEY), or the bucket belongs to another account`,
        { cause: err, details: err.details },
      );
    }
    if (err.details?.httpStatus === 301) {
      throw new StorageError('E_CONFIG_INVALID', `bucket "${o.bucket}" is in another region than ${region}: set STORAGE_S3_REGION`, { cause: err });
    }
    if (err.code === 'E_UNAVAILABLE' || err.code === 'E_TIMEOUT') {
      throw new StorageError(err.code, `cannot reach ${where}: ${err.message}. Check STORAGE_S3_ENDPOINT_URL and the network`, { cause: err, details: err.details });
    }
    throw err;
  }
}

async function createBucket(call: S3Call, o: ResolvedS3Options, region: string): Promise<void> {
  // AWS wants the region spelled out everywhere but us-east-1; other services ignore it.
  const configuration = o.provider === 'aws' && region !== 'us-east-1' ? { LocationConstraint: region as BucketLocationConstraint } : undefined;
  await call('create bucket', (c) => c.send(new (s3().CreateBucketCommand)({ Bucket: o.bucket, CreateBucketConfiguration: configuration }))).catch((err: unknown) => {
    // Another process may have created it meanwhile.
    if (isStorageError(err) && /BucketAlreadyOwnedByYou/.test(String(err.details?.providerCode))) return;
    throw err;
  });
}
