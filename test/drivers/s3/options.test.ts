/** Unit tests for S3 option resolution, provider profiles and storage URLs. */
import assert from 'node:assert/strict';
import { S3Client } from '@aws-sdk/client-s3';
import { describe, it } from 'node:test';
import { resolveS3Options } from '../../../src/drivers/s3/options.js';
import { parseStorageUrl, PROVIDERS, StorageError } from '../../../src/index.js';

function configError(fn: () => unknown, pattern: RegExp): void {
  assert.throws(fn, (e: unknown) => e instanceof StorageError && e.code === 'E_CONFIG_INVALID' && pattern.test(e.message));
}

describe('resolveS3Options', () => {
  it('defaults to AWS without an endpoint and to a self-hosted profile with one', () => {
    const aws = resolveS3Options({ bucket: 'my-bucket' });
    assert.equal(aws.provider, 'aws');
    assert.equal(aws.profile.checksums, 'WHEN_SUPPORTED');
    assert.equal(aws.forcePathStyle, false);
    const minio = resolveS3Options({ bucket: 'my-bucket', endpoint: 'http://127.0.0.1:9000' });
    assert.equal(minio.provider, 'minio');
    assert.equal(minio.profile.checksums, 'WHEN_REQUIRED');
    assert.equal(minio.forcePathStyle, true);
  });

  it('refuses an empty region without a client of your own', () => {
    assert.throws(() => resolveS3Options({ bucket: 'b-1', provider: 'hetzner', region: '' }), /region is required for provider hetzner/);
  });

  it('fills provider endpoints from region or account id', () => {
    assert.equal(resolveS3Options({ bucket: 'b-1', provider: 'hetzner', region: 'fsn1' }).endpoint, 'https://fsn1.your-objectstorage.com');
    assert.equal(resolveS3Options({ bucket: 'b-1', provider: 'r2', accountId: 'abc123' }).endpoint, 'https://abc123.r2.cloudflarestorage.com');
    assert.equal(resolveS3Options({ bucket: 'b-1', provider: 'r2', accountId: 'abc123' }).region, 'auto');
    assert.equal(resolveS3Options({ bucket: 'b-1', provider: 'spaces', region: 'fra1' }).endpoint, 'https://fra1.digitaloceanspaces.com');
    assert.equal(resolveS3Options({ bucket: 'b-1', provider: 'b2', region: 'eu-central-003' }).endpoint, 'https://s3.eu-central-003.backblazeb2.com');
    assert.equal(resolveS3Options({ bucket: 'b-1', provider: 'scaleway', region: 'fr-par' }).profile.maxParts, 1000);
    assert.equal(resolveS3Options({ bucket: 'b-1', provider: 'r2', accountId: 'a' }).profile.equalParts, true);
    for (const provider of PROVIDERS) assert.ok(resolveS3Options({ bucket: 'b-1', provider, region: 'r1', accountId: 'a', endpoint: 'http://x' }));
  });

  it('normalizes the key prefix', () => {
    assert.equal(resolveS3Options({ bucket: 'b-1', prefix: 'app/uploads' }).prefix, 'app/uploads/');
    configError(() => resolveS3Options({ bucket: 'b-1', prefix: '../x' }), /prefix/);
  });

  it('names each bad option', () => {
    configError(() => resolveS3Options({ bucket: 'Bad_Bucket' }), /bucket must be 3-63/);
    configError(() => resolveS3Options({ bucket: 'b-1', provider: 'minio' }), /endpoint is required for provider minio/);
    configError(() => resolveS3Options({ bucket: 'b-1', provider: 'hetzner' }), /region is required/);
    configError(() => resolveS3Options({ bucket: 'b-1', provider: 'r2' }), /accountId is required/);
    configError(() => resolveS3Options({ bucket: 'b-1', partSize: 1024 }), /partSize must be a whole number from 5242880/);
    configError(() => resolveS3Options({ bucket: 'b-1', concurrency: 0 }), /concurrency/);
    configError(() => resolveS3Options({ bucket: 'b-1', endpoint: 'ftp://x' }), /endpoint must be an http/);
    configError(() => resolveS3Options({ bucket: 'b-1', accessKeyId: 'a' }), /must be given together/);
  });
});

describe('resolveS3Options: your own client or credentials', () => {
  const client = (endpoint?: string) => new S3Client({ region: 'eu-west-1', endpoint });

  it('takes a client alone, the provider defaulting as without one (by whether it has an endpoint)', () => {
    const custom = client('http://127.0.0.1:9000');
    const resolved = resolveS3Options({ bucket: 'b-1', client: custom, prefix: 'p' });
    assert.equal(resolved.client, custom);
    assert.equal(resolved.provider, 'minio');
    assert.equal(resolved.endpoint, undefined, "the client's endpoint is its own");
    assert.equal(resolveS3Options({ bucket: 'b-1', client: client() }).provider, 'aws');
    assert.equal(resolveS3Options({ bucket: 'b-1', client: client(), provider: 'r2' }).provider, 'r2', 'no accountId needed: the client has its endpoint');
    assert.equal(resolveS3Options({ bucket: 'b-1', client: client(), provider: 'hetzner' }).region, '', 'nor a region');
  });

  it('refuses the options a client would ignore, naming them', () => {
    configError(() => resolveS3Options({ bucket: 'b-1', client: client(), endpoint: 'http://x', region: 'r1' }), /S3 option endpoint, region would be ignored beside client/);
    configError(() => resolveS3Options({ bucket: 'b-1', client: client(), accessKeyId: 'a', secretAccessKey: 's' }), /accessKeyId, secretAccessKey would be ignored/);
    configError(() => resolveS3Options({ bucket: 'b-1', client: client(), credentials: { accessKeyId: 'a', secretAccessKey: 's' } }), /credentials would be ignored/);
    configError(() => resolveS3Options({ bucket: 'b-1', client: client(), maxSockets: 8, socketTimeoutMs: 10 }), /maxSockets, socketTimeoutMs would be ignored/);
    configError(() => resolveS3Options({ bucket: 'b-1', client: { send: 'no' } as unknown as S3Client }), /client must be an S3Client/);
  });

  it('takes credentials as keys or a provider, not beside accessKeyId', () => {
    const provider = async () => ({ accessKeyId: 'a', secretAccessKey: 's' });
    assert.equal(resolveS3Options({ bucket: 'b-1', credentials: provider }).credentials, provider);
    assert.deepEqual(resolveS3Options({ bucket: 'b-1', credentials: { accessKeyId: 'a', secretAccessKey: 's', sessionToken: 't' } }).credentials, { accessKeyId: 'a', secretAccessKey: 's', sessionToken: 't' });
    assert.deepEqual(resolveS3Options({ bucket: 'b-1', accessKeyId: 'a', secretAccessKey: 's' }).credentials, { accessKeyId: 'a', secretAccessKey: 's', sessionToken: undefined });
    configError(() => resolveS3Options({ bucket: 'b-1', credentials: provider, accessKeyId: 'a', secretAccessKey: 's' }), /credentials and accessKeyId\/secretAccessKey\/sessionToken cannot be given together/);
    configError(() => resolveS3Options({ bucket: 'b-1', credentials: { accessKeyId: 'a' } as never }), /credentials must be/);
    configError(() => resolveS3Options({ bucket: 'b-1', credentials: { accessKeyId: '', secretAccessKey: 's' } }), /credentials must be/);
    configError(() => resolveS3Options({ bucket: 'b-1', credentials: 'a:s' as never }), /credentials must be/);
  });
});

describe('parseStorageUrl', () => {
  it('reads local, memory and both s3 forms', () => {
    assert.deepEqual(parseStorageUrl('local:./uploads'), { backend: 'local', localPath: './uploads' });
    assert.deepEqual(parseStorageUrl('memory:'), { backend: 'memory' });
    assert.deepEqual(parseStorageUrl('s3://photos/app/v1'), { backend: 's3', s3: { bucket: 'photos', prefix: 'app/v1' } });
    assert.deepEqual(parseStorageUrl('s3://AK%2F1:s%40cret@minio.local:9000/photos/pre?region=eu-1&provider=minio&pathStyle=true'), {
      backend: 's3',
      s3: { endpoint: 'https://minio.local:9000', bucket: 'photos', accessKeyId: 'AK/1', secretAccessKey: 's@cret', prefix: 'pre', region: 'eu-1', provider: 'minio', forcePathStyle: true },
    });
    assert.equal(parseStorageUrl('s3+http://k:s@127.0.0.1:7480/b').s3?.endpoint, 'http://127.0.0.1:7480');
  });

  it('refuses what it cannot read, naming the variable', () => {
    configError(() => parseStorageUrl('ftp://x/y'), /STORAGE_URL has the unknown scheme "ftp:"/);
    configError(() => parseStorageUrl('local:'), /needs a folder/);
    configError(() => parseStorageUrl('nonsense'), /must look like/);
  });
});
