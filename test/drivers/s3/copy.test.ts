/**
 * Server-side copies on the real RGW when the source is replaced between the driver's
 * stat of it and the copy (another writer's overwrite): what the copy returns must
 * describe the object it made, whose bytes are one version of the source. Ceph RGW 16
 * ignores the standard `x-amz-copy-source-if-match` (it reads `x-amz-copy-if-match`) and
 * every condition of UploadPartCopy, so each path is exercised: the condition honoured
 * (ceph profile), a service that ignores it (the minio profile on RGW), and a multipart
 * copy. The quota layer counts a copy by what it returns, so a stale size here was
 * drift there.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { DriverLayer, type Driver, type ObjectInfo, type S3DriverOptions, type Storage } from '../../../src/index.js';
import { PutBody } from '../../../src/core/body.js';
import { emptyStorage, freshS3Storage } from './env.js';

/** The storage's driver as a copy source whose first stat of a key is followed by an overwrite of it, as if another writer raced the copy. */
class RacedSource extends DriverLayer {
  stats = 0;
  readonly #replacement: Buffer;

  constructor(inner: Driver, replacement: Buffer) {
    super(inner);
    this.#replacement = replacement;
  }

  override async stat(key: string): Promise<ObjectInfo> {
    const info = await this.inner.stat(key);
    this.stats += 1;
    if (this.stats === 1) await this.inner.put(key, new PutBody(this.#replacement), { contentType: 'application/octet-stream', metadata: {} });
    return info;
  }
}

const storages: Storage[] = [];
async function storage(label: string, extra: Partial<S3DriverOptions> = {}): Promise<Storage> {
  const made = await freshS3Storage(label, extra);
  storages.push(made);
  return made;
}
after(async () => {
  for (const made of storages) await emptyStorage(made);
});

describe('s3 copy of a source replaced while it is copied', () => {
  const old = Buffer.alloc(1000, 'o');
  const replacement = Buffer.alloc(5000, 'n');

  /** Copies `a` to `b` through a raced source; the copy's result, the copy's bytes and the stats the source saw. */
  async function racedCopy(target: Storage): Promise<{ result: ObjectInfo | undefined; bytes: Buffer; stats: number }> {
    await target.put('a', old);
    const source = new RacedSource(target.driver, replacement);
    const result = await target.driver.copyFrom(source, 'a', 'b');
    const bytes = await target.get('b');
    return { result, bytes, stats: source.stats };
  }

  let ceph: Storage;
  before(async () => {
    ceph = await storage('copy-ceph');
  });

  it('is refused by the condition, looked at again and copied again (ceph profile)', async () => {
    const { result, bytes, stats } = await racedCopy(ceph);
    assert.deepEqual(bytes, replacement);
    assert.equal(result?.size, replacement.length, 'the result describes the copy');
    assert.equal(result?.etag, (await ceph.stat('b')).etag);
    assert.equal(stats, 2, 'the first copy was refused by its condition, and the source looked at again');
  });

  it('is caught by the copy\'s ETag on a service that ignores the condition (minio profile on RGW)', async () => {
    const target = await storage('copy-minio', { provider: 'minio' });
    const { result, bytes } = await racedCopy(target);
    assert.deepEqual(bytes, replacement);
    assert.equal(result?.size, replacement.length, 'the result describes the copy');
    assert.equal(result?.etag, (await target.stat('b')).etag);
  });

  it('is checked before a multipart copy completes, whose part copies RGW does not condition', async () => {
    const target = await storage('copy-parts', { multipartCopyThreshold: 0 });
    const { result, bytes, stats } = await racedCopy(target);
    assert.deepEqual(bytes, replacement, 'one version of the source, whole');
    assert.equal(result?.size, replacement.length, 'the result describes the copy');
    assert.equal(stats, 2, 'the parts of the replaced source were not completed into an object');
  });
});
