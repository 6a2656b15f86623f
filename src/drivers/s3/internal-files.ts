/**
 * The S3 driver's internal files (see core/internal-files.ts): one object each under
 * `<prefix>.stowage/internal/<name>`, which listings of objects leave out with the rest
 * of `.stowage/`. A PutObject replaces an object atomically, so no temp step is needed.
 * Also the batched DeleteObjects that the driver's `deleteMany` shares.
 */
import { isStorageError } from '../../core/errors.js';
import { checkInternalName, checkInternalPrefix, INTERNAL_PAGE_SIZE, type InternalFilesPage } from '../../core/internal-files.js';
import { RESERVED_SEGMENT } from '../../core/keys.js';
import { s3Error } from './errors.js';
import type { S3Call } from './multipart.js';
import type { ResolvedS3Options } from './options.js';
import { s3 } from './sdk.js';

const INTERNAL_AREA = `${RESERVED_SEGMENT}/internal/`;

/** Deletes S3 keys with one DeleteObjects per 1000; the first per-key error is thrown. */
export async function deleteS3Keys(call: S3Call, bucket: string, s3Keys: readonly string[]): Promise<void> {
  for (let i = 0; i < s3Keys.length; i += 1000) {
    const batch = s3Keys.slice(i, i + 1000);
    const out = await call('delete objects', (c) => c.send(new (s3().DeleteObjectsCommand)({ Bucket: bucket, Delete: { Quiet: true, Objects: batch.map((Key) => ({ Key })) } })));
    const failed = out.Errors?.[0];
    if (failed) throw s3Error(Object.assign(new Error(failed.Message ?? 'delete failed'), { name: failed.Code ?? '' }), `delete ${failed.Key ?? ''}`, failed.Key);
  }
}

/** Internal files of one bucket and prefix. */
export class S3InternalFiles {
  readonly #call: S3Call;
  readonly #o: ResolvedS3Options;

  constructor(call: S3Call, options: ResolvedS3Options) {
    this.#call = call;
    this.#o = options;
  }

  get #area(): string {
    return `${this.#o.prefix}${INTERNAL_AREA}`;
  }

  /** One PutObject of a body of known length (re-sent on retry). */
  async put(name: string, data: Uint8Array): Promise<void> {
    const Key = this.#area + checkInternalName(name);
    await this.#call(`write internal file ${name}`, (c) => c.send(new (s3().PutObjectCommand)({ Bucket: this.#o.bucket, Key, Body: data, ContentLength: data.byteLength, ContentType: 'application/octet-stream' })));
  }

  /** One GetObject; a missing object is undefined. */
  async read(name: string): Promise<Uint8Array | undefined> {
    const Key = this.#area + checkInternalName(name);
    try {
      const out = await this.#call(`read internal file ${name}`, (c) => c.send(new (s3().GetObjectCommand)({ Bucket: this.#o.bucket, Key })));
      return (await out.Body?.transformToByteArray()) ?? new Uint8Array();
    } catch (err) {
      if (isStorageError(err, 'E_NOT_FOUND')) return undefined;
      throw err;
    }
  }

  async delete(names: readonly string[]): Promise<void> {
    await deleteS3Keys(this.#call, this.#o.bucket, names.map((name) => this.#area + checkInternalName(name)));
  }

  /** One ListObjectsV2 page, started after the cursor (S3 lists in byte order too). */
  async list(prefix: string, cursor: string | undefined): Promise<InternalFilesPage> {
    const Prefix = this.#area + checkInternalPrefix(prefix);
    const out = await this.#call('list internal files', (c) =>
      c.send(new (s3().ListObjectsV2Command)({ Bucket: this.#o.bucket, Prefix, MaxKeys: INTERNAL_PAGE_SIZE, StartAfter: cursor === undefined ? undefined : this.#area + cursor })),
    );
    const names = (out.Contents ?? []).map((item) => (item.Key ?? '').slice(this.#area.length));
    return out.IsTruncated && names.length > 0 ? { names, cursor: names[names.length - 1] } : { names };
  }
}
