/**
 * Server-side copies: CopyObject up to 5 GiB, UploadPartCopy ranges above (S3 refuses
 * single copies past 5 GiB). A copy can replace the metadata, which is how a completed
 * multipart upload gets its SHA-256, and can be made conditional on the source's ETag.
 */
import { mapConcurrently } from '../../core/concurrency.js';
import { StorageError } from '../../core/errors.js';
import { encodeKeyPath } from '../../core/keys.js';
import { normalizeEtag } from '../../core/objects.js';
import type { ObjectAttributes } from '../../core/types.js';
import { abortUpload, completeUpload, type MultipartState, type S3Call } from './multipart.js';
import type { ResolvedS3Options } from './options.js';
import { s3 } from './sdk.js';

/** What to copy. */
export interface CopyRequest {
  /** The source's bucket, when it is not this driver's (same service and credentials). */
  fromBucket?: string;
  /** Full S3 keys. */
  from: string;
  to: string;
  /** The source's size, which decides between CopyObject and a multipart copy. */
  size: number;
  /** Copy only while the source still has this ETag. */
  ifMatch?: string;
  /** New attributes (S3 metadata already encoded); without them the source's are kept. */
  replace?: ObjectAttributes;
  /** For multipart copies the metadata must be given, since nothing is carried over. */
  sourceFields?: ObjectAttributes;
}

/** Part size of multipart copies: large, since the bytes never leave the service. */
const COPY_PART_SIZE = 512 * 1024 * 1024;

/** Copies within the service (from this bucket unless `fromBucket` says otherwise); returns the new object's ETag. */
export async function copyObject(call: S3Call, o: ResolvedS3Options, req: CopyRequest): Promise<string | undefined> {
  const source = `${req.fromBucket ?? o.bucket}/${encodeKeyPath(req.from)}`;
  const ifMatch = req.ifMatch === undefined ? undefined : `"${normalizeEtag(req.ifMatch)}"`;
  if (req.size <= o.multipartCopyThreshold) {
    const r = req.replace;
    const command = new (s3().CopyObjectCommand)({
      Bucket: o.bucket,
      Key: req.to,
      CopySource: source,
      CopySourceIfMatch: ifMatch,
      MetadataDirective: r ? 'REPLACE' : 'COPY',
      ContentType: r?.contentType,
      CacheControl: r?.cacheControl,
      ContentDisposition: r?.contentDisposition,
      Metadata: r?.metadata,
    });
    const header = o.profile.copyIfMatchHeader;
    if (ifMatch !== undefined && header !== undefined) {
      // Added before signing, so the header is signed like the rest.
      command.middlewareStack.add(
        (next) => async (args) => {
          (args.request as { headers: Record<string, string> }).headers[header] = ifMatch;
          return next(args);
        },
        { step: 'build', name: 'stowageCopyIfMatch' },
      );
    }
    const out = await call(`copy ${req.from} to ${req.to}`, (c) => c.send(command));
    return out.CopyObjectResult?.ETag;
  }
  const fields = req.replace ?? req.sourceFields;
  const created = await call(`start multipart copy to ${req.to}`, (c) =>
    c.send(
      new (s3().CreateMultipartUploadCommand)({
        Bucket: o.bucket,
        Key: req.to,
        ContentType: fields?.contentType,
        CacheControl: fields?.cacheControl,
        ContentDisposition: fields?.contentDisposition,
        Metadata: fields?.metadata,
      }),
    ),
  );
  const partSize = Math.max(COPY_PART_SIZE, Math.ceil(req.size / o.profile.maxParts));
  const state: MultipartState = { bucket: o.bucket, s3Key: req.to, uploadId: created.UploadId ?? '', partSize, parts: [] };
  try {
    const ranges: [number, number][] = [];
    for (let start = 0; start < req.size; start += partSize) ranges.push([start, Math.min(req.size, start + partSize) - 1]);
    await mapConcurrently(ranges, o.concurrency, async ([start, end], index) => {
      const out = await call(`copy part ${index + 1}`, (c) =>
        c.send(
          new (s3().UploadPartCopyCommand)({
            Bucket: o.bucket,
            Key: req.to,
            UploadId: state.uploadId,
            PartNumber: index + 1,
            CopySource: source,
            CopySourceIfMatch: ifMatch,
            CopySourceRange: `bytes=${start}-${end}`,
          }),
        ),
      );
      state.parts.push({ partNumber: index + 1, etag: out.CopyPartResult?.ETag ?? '', size: end - start + 1 });
    });
    state.parts.sort((a, b) => a.partNumber - b.partNumber);
    // Not every service honours a part copy's condition (Ceph RGW 16 does not): a source
    // replaced while its ranges were copied would join two objects' bytes into one.
    if (ifMatch !== undefined && (await sourceEtag(call, o, req)) !== normalizeEtag(ifMatch)) {
      throw new StorageError('E_PRECONDITION_FAILED', `${JSON.stringify(req.from)} changed while it was copied`, { key: req.from });
    }
    return await completeUpload(call, state, {});
  } catch (err) {
    await abortUpload(call, state);
    throw err;
  }
}

/** The ETag the copy's source has now. */
async function sourceEtag(call: S3Call, o: ResolvedS3Options, req: CopyRequest): Promise<string> {
  const head = await call(`check ${req.from}`, (c) => c.send(new (s3().HeadObjectCommand)({ Bucket: req.fromBucket ?? o.bucket, Key: req.from })));
  return normalizeEtag(head.ETag ?? '');
}
