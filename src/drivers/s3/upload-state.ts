/**
 * The state of a resumable `putFile`, kept in the bucket itself so that any later
 * process (another host too) can resume the upload: one small JSON object per upload,
 * `<prefix>.stowage/uploads/<key tag>-<file tag>.json`. The key tag is a digest of the
 * bucket, prefix and key (so the states of one key are found by listing a prefix, which
 * is how aborting an upload finds its state); the file tag adds the file's identity
 * (real path, size, mtime, inode), so a changed file gets another state and starts over.
 * The local path itself is never stored in the bucket, only its digest.
 *
 * `.stowage/` is reserved: no key may start with it ({@link checkUserKey}) and listings
 * leave it out, so users never see these objects.
 */
import { createHash } from 'node:crypto';
import { mapConcurrently } from '../../core/concurrency.js';
import { isStorageError } from '../../core/errors.js';
import { checkNotReserved, RESERVED_SEGMENT } from '../../core/keys.js';
import type { ObjectAttributes } from '../../core/types.js';
import type { S3Call } from './multipart.js';
import type { ResolvedS3Options } from './options.js';
import { s3 } from './sdk.js';

/** Where upload states live, below the driver's prefix. */
const UPLOADS_AREA = `${RESERVED_SEGMENT}/uploads/`;
/** States read at once when listing them all. */
const READ_CONCURRENCY = 16;

/** Refuses keys in the reserved area with E_INVALID_KEY, as the fs driver does. */
export function checkUserKey(key: string): void {
  checkNotReserved(key, 's3');
}

/** What identifies a local file across runs. */
export interface FileIdentity {
  realPath: string;
  size: number;
  mtimeMs: number;
  ino: number;
}

/** A part the upload holds, with the digests that let a later run check it against the file. */
export interface RecordedPart {
  partNumber: number;
  size: number;
  /** The ETag S3 gave the part (quotes removed). */
  etag: string;
  /** SHA-256 of the part's bytes, as read from the file. */
  sha256: string;
}

/** The state object's content. */
export interface UploadRecord {
  version: 1;
  key: string;
  uploadId: string;
  partSize: number;
  size: number;
  mtimeMs: number;
  parts: RecordedPart[];
  /** The attributes the upload was created with (metadata S3-encoded, the SHA-256 in it when known then). */
  attributes: ObjectAttributes;
  /** SHA-256 of the whole file, read before the upload was created (absent in states of earlier versions, which are not resumed). */
  sha256?: string;
  /** SHA-256 of each part of the file, read with {@link UploadRecord.sha256}: what every part sent or adopted is checked against. */
  partSha256?: string[];
  /** ISO time the upload was created. */
  createdAt: string;
}

function digest(parts: readonly unknown[]): string {
  return createHash('sha256').update(JSON.stringify(parts)).digest('hex').slice(0, 32);
}

/** The key tag: all states of one key share it as their name's prefix. */
function keyTag(o: ResolvedS3Options, key: string): string {
  return digest([o.bucket, o.prefix, key]);
}

/** The full S3 key of the state of an upload of `file` to `key`. */
export function recordKey(o: ResolvedS3Options, key: string, file: FileIdentity): string {
  const tag = keyTag(o, key);
  return `${o.prefix}${UPLOADS_AREA}${tag}-${digest([tag, file.realPath, file.size, file.mtimeMs, file.ino])}.json`;
}

/** Checks what a state object holds; anything unexpected makes it no state at all (the upload starts over). */
function parseRecord(text: string): UploadRecord | undefined {
  try {
    const r = JSON.parse(text) as Partial<UploadRecord>;
    const validPart = (p: Partial<RecordedPart>) => Number.isSafeInteger(p.partNumber) && Number.isSafeInteger(p.size) && typeof p.etag === 'string' && typeof p.sha256 === 'string';
    if (r.version !== 1 || typeof r.key !== 'string' || typeof r.uploadId !== 'string' || r.uploadId === '' || !Number.isSafeInteger(r.partSize) || !Number.isSafeInteger(r.size)) return undefined;
    if (typeof r.mtimeMs !== 'number' || !Array.isArray(r.parts) || !r.parts.every(validPart) || typeof r.attributes !== 'object' || r.attributes === null || typeof r.createdAt !== 'string') return undefined;
    if ((r.sha256 !== undefined && typeof r.sha256 !== 'string') || (r.partSha256 !== undefined && !(Array.isArray(r.partSha256) && r.partSha256.every((d) => typeof d === 'string')))) return undefined;
    return r as UploadRecord;
  } catch {
    return undefined;
  }
}

/** Reads a state object; undefined when there is none or it is unreadable. */
export async function readRecord(call: S3Call, o: ResolvedS3Options, s3Key: string): Promise<UploadRecord | undefined> {
  try {
    const out = await call('read upload state', (c) => c.send(new (s3().GetObjectCommand)({ Bucket: o.bucket, Key: s3Key })));
    return parseRecord((await out.Body?.transformToString('utf8')) ?? '');
  } catch (err) {
    if (isStorageError(err, 'E_NOT_FOUND')) return undefined;
    throw err;
  }
}

/** Writes a state object (one small PutObject, re-sent on retry). */
export async function writeRecord(call: S3Call, o: ResolvedS3Options, s3Key: string, record: UploadRecord): Promise<void> {
  const body = JSON.stringify(record);
  await call('write upload state', (c) => c.send(new (s3().PutObjectCommand)({ Bucket: o.bucket, Key: s3Key, Body: body, ContentType: 'application/json' })));
}

/** Deletes a state object; failures are left for the clean-up (gc) to find. */
export async function deleteRecord(call: S3Call, o: ResolvedS3Options, s3Key: string): Promise<void> {
  await call('delete upload state', (c) => c.send(new (s3().DeleteObjectCommand)({ Bucket: o.bucket, Key: s3Key }))).catch(() => undefined);
}

/**
 * Rewrites a state as parts complete: never two writes in flight, and the changes
 * that arrive during a write are coalesced into the next one. A failed write is
 * dropped: the parts are in the upload whatever the state says, and the next run
 * recognises the unrecorded ones by their ETag (see resume.ts).
 */
export class RecordWriter {
  readonly #write: () => Promise<void>;
  #writing: Promise<void> | undefined;
  #dirty = false;

  constructor(write: () => Promise<void>) {
    this.#write = write;
  }

  /** Asks for the state to be written (again) with what it holds now. */
  update(): void {
    this.#dirty = true;
    this.#writing ??= this.#drain();
  }

  async #drain(): Promise<void> {
    while (this.#dirty) {
      this.#dirty = false;
      await this.#write().catch(() => undefined);
    }
    this.#writing = undefined;
  }

  /** Resolves once every asked-for write has been made (or has failed). */
  async flush(): Promise<void> {
    while (this.#writing) await this.#writing;
  }
}

/** A state found in the bucket, with where it is. */
export interface FoundRecord {
  s3Key: string;
  record: UploadRecord;
}

/** Every state under `area` (a prefix of state names), read; unreadable ones are left out. */
async function recordsUnder(call: S3Call, o: ResolvedS3Options, area: string): Promise<FoundRecord[]> {
  const keys: string[] = [];
  let token: string | undefined;
  do {
    const out = await call('list upload states', (c) => c.send(new (s3().ListObjectsV2Command)({ Bucket: o.bucket, Prefix: area, ContinuationToken: token })));
    for (const item of out.Contents ?? []) if (item.Key?.endsWith('.json')) keys.push(item.Key);
    token = out.IsTruncated ? out.NextContinuationToken : undefined;
  } while (token);
  const found = await mapConcurrently(keys, READ_CONCURRENCY, async (s3Key) => ({ s3Key, record: await readRecord(call, o, s3Key) }));
  return found.filter((f): f is FoundRecord => f.record !== undefined);
}

/** Every upload state of the driver's prefix. */
export function allRecords(call: S3Call, o: ResolvedS3Options): Promise<FoundRecord[]> {
  return recordsUnder(call, o, `${o.prefix}${UPLOADS_AREA}`);
}

/** Deletes the states of `key` that belong to the upload `uploadId` (a listing of the key's states, usually one). */
export async function deleteRecordsOf(call: S3Call, o: ResolvedS3Options, key: string, uploadId: string): Promise<void> {
  const found = await recordsUnder(call, o, `${o.prefix}${UPLOADS_AREA}${keyTag(o, key)}-`);
  for (const f of found) if (f.record.uploadId === uploadId) await deleteRecord(call, o, f.s3Key);
}
