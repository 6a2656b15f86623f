/**
 * Reads of the S3 driver, one GetObject each: the range and `ifNoneMatch` travel with
 * it, so the service itself answers a current copy with 304 (no HEAD first) and a range
 * past the end with 416. A 416 that leaves out the object's size (Ceph RGW 16 does)
 * costs one HEAD to learn it, since the caller's 416 names it.
 */
import type { Readable } from 'node:stream';
import type { DriverReadOptions } from '../../core/contract.js';
import { isStorageError, StorageError } from '../../core/errors.js';
import { notFound, notModifiedIf, rangeNotSatisfiable, resolveRange } from '../../core/objects.js';
import type { ByteRange, NotModified, ObjectInfo, ObjectStream } from '../../core/types.js';
import { sdkStatus, unsatisfiedRangeSize } from './errors.js';
import { objectInfoFromS3 } from './metadata.js';
import type { S3Call } from './multipart.js';
import { s3 } from './sdk.js';
import { mapErrors } from './streams.js';

/** What a read needs of its driver. */
export interface S3ReadTarget {
  call: S3Call;
  bucket: string;
  /** The object's key in the bucket (the driver's prefix applied). */
  s3Key: string;
  /** HEADs the object (E_NOT_FOUND when missing), for a size the service did not say. */
  stat(): Promise<ObjectInfo>;
}

/** GetObject's answer to a matching If-None-Match, which the SDK throws as an error. */
const NOT_MODIFIED = Symbol('304');

/** The Range header for a range, its shape checked; undefined for a zero suffix, which no object satisfies. */
function rangeHeader(range: ByteRange): string | undefined {
  if ('suffix' in range && range.suffix === 0) return undefined;
  try {
    resolveRange(range, Number.MAX_SAFE_INTEGER); // shape checks only
  } catch (err) {
    // A start at the largest position: past the end of the object, which the service says.
    if (!isStorageError(err, 'E_RANGE_NOT_SATISFIABLE')) throw err;
  }
  return 'suffix' in range ? `bytes=-${range.suffix}` : `bytes=${range.start}-${range.end ?? ''}`;
}

/**
 * Opens `key` (or a range of it), or answers NotModified when its ETag is
 * `opts.ifNoneMatch`. S3 resolves the range, and its Content-Range gives back the whole
 * size. Errors while streaming come out as StorageErrors too.
 */
export async function readObject(target: S3ReadTarget, key: string, opts: DriverReadOptions): Promise<ObjectStream | NotModified> {
  const { ifNoneMatch } = opts;
  let header: string | undefined;
  if (opts.range) {
    header = rangeHeader(opts.range);
    // Some services serve `bytes=-0` whole: a HEAD answers it instead (the condition first).
    if (header === undefined) return unsatisfiable(await target.stat(), ifNoneMatch, 'suffix 0', key);
  }
  const command = new (s3().GetObjectCommand)({ Bucket: target.bucket, Key: target.s3Key, Range: header, IfNoneMatch: ifNoneMatch === undefined ? undefined : `"${ifNoneMatch}"` });
  const out = await target
    .call(`read ${key}`, async (c) => {
      try {
        return await c.send(command, { abortSignal: opts.signal });
      } catch (err) {
        if (ifNoneMatch !== undefined && sdkStatus(err) === 304) return NOT_MODIFIED;
        throw err;
      }
    })
    .catch(async (err: unknown) => {
      if (isStorageError(err, 'E_NOT_FOUND')) throw notFound(key, err);
      if (!isStorageError(err, 'E_RANGE_NOT_SATISFIABLE')) throw err;
      const size = unsatisfiedRangeSize(err.cause) ?? (await target.stat()).size;
      throw rangeNotSatisfiable(String(header), size, { key, cause: err, details: err.details });
    });
  if (out === NOT_MODIFIED) return { notModified: true, etag: ifNoneMatch as string };
  const body = out.Body as Readable;
  const contentRange = /^bytes (\d+)-(\d+)\/(\d+)$/.exec(out.ContentRange ?? '');
  const size = contentRange ? Number(contentRange[3]) : (out.ContentLength ?? 0);
  const info = objectInfoFromS3(key, out, size);
  // A service that ignores If-None-Match on GET still says the ETag: the answer is the same.
  const unchanged = notModifiedIf(info, ifNoneMatch);
  if (unchanged) {
    body.destroy();
    return unchanged;
  }
  if (header && (!contentRange || size === 0)) {
    // A service that ignored the range, or an empty object: answer as S3 specifies.
    body.destroy();
    if (size === 0) throw rangeNotSatisfiable(header, 0, { key });
    throw new StorageError('E_UNAVAILABLE', `the service ignored the Range header for ${key}`, { key });
  }
  const range = contentRange ? { start: Number(contentRange[1]), end: Number(contentRange[2]) } : undefined;
  return { stream: mapErrors(body, `read ${key}`, key), info, range };
}

/** For a range no object of `info`'s size satisfies: NotModified when the condition holds (it comes first), else the 416. */
function unsatisfiable(info: ObjectInfo, ifNoneMatch: string | undefined, what: string, key: string): NotModified {
  const unchanged = notModifiedIf(info, ifNoneMatch);
  if (unchanged) return unchanged;
  throw rangeNotSatisfiable(what, info.size, { key });
}
