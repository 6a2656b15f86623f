/**
 * Listing of the S3 driver: one ListObjectsV2 page, its continuation token as the
 * cursor. Services accept any continuation token, even garbage (which restarts the
 * listing), so the token travels in an envelope of ours that a malformed cursor cannot
 * fake. Keys that break the key rules (folder markers like `photos/` made by consoles)
 * and Stowage's own objects under `.stowage/` are left out.
 */
import type { DriverListOptions } from '../../core/contract.js';
import { StorageError } from '../../core/errors.js';
import { isAddressableKey } from '../../core/keys.js';
import type { ListPage, ObjectInfo } from '../../core/types.js';
import { objectInfoFromS3 } from './metadata.js';
import type { S3Call } from './multipart.js';
import type { ResolvedS3Options } from './options.js';
import { s3 } from './sdk.js';
import { isReservedKey } from '../../core/keys.js';

const CURSOR_TAG = 'stowage-s3:';

/** The cursor for a continuation token. */
function encodeS3Cursor(token: string): string {
  return Buffer.from(CURSOR_TAG + token, 'utf8').toString('base64url');
}

/** The continuation token of a cursor; E_INVALID_ARGUMENT for one this driver never gave. */
function decodeS3Cursor(cursor: string | undefined): string | undefined {
  if (!cursor) return undefined;
  const text = Buffer.from(cursor, 'base64url').toString('utf8');
  if (!text.startsWith(CURSOR_TAG) || text.length === CURSOR_TAG.length) {
    throw new StorageError('E_INVALID_ARGUMENT', 'invalid list cursor: pass back the cursor of the previous page unchanged');
  }
  return text.slice(CURSOR_TAG.length);
}

/** One page of `opts`; with `details` (the default), `stat` gives each object's full info (undefined: gone meanwhile). */
export async function listPage(call: S3Call, o: ResolvedS3Options, opts: DriverListOptions, stat: (keys: string[]) => Promise<(ObjectInfo | undefined)[]>): Promise<ListPage> {
  const base = o.prefix;
  const out = await call('list', (c) =>
    c.send(new (s3().ListObjectsV2Command)({ Bucket: o.bucket, Prefix: base + opts.prefix, Delimiter: opts.delimiter, MaxKeys: opts.limit, ContinuationToken: decodeS3Cursor(opts.cursor), StartAfter: opts.cursor === undefined && opts.startAfter !== undefined ? base + opts.startAfter : undefined }), { abortSignal: opts.signal }),
  );
  const listed = (out.Contents ?? []).map((item) => ({ ...item, key: (item.Key ?? '').slice(base.length) })).filter((item) => isAddressableKey(item.key) && !isReservedKey(item.key));
  const objects = opts.details === false
    ? listed.map((item) => objectInfoFromS3(item.key, { ETag: item.ETag, LastModified: item.LastModified }, item.Size ?? 0))
    : (await stat(listed.map((item) => item.key))).filter((i): i is ObjectInfo => i !== undefined);
  const page: ListPage = {
    objects,
    prefixes: (out.CommonPrefixes ?? []).map((p) => (p.Prefix ?? '').slice(base.length)).filter((p) => p !== '' && !isReservedKey(p)),
  };
  if (out.IsTruncated && out.NextContinuationToken) page.cursor = encodeS3Cursor(out.NextContinuationToken);
  return page;
}
