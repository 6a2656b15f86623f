/**
 * How Stowage's object fields travel as S3 object metadata, and back.
 *
 * S3 user metadata are HTTP headers, so values must be printable ASCII: other values
 * are stored RFC 2047 encoded (`=?UTF-8?B?...?=`), the form S3 itself documents, and
 * decoded on read. The SHA-256 lives under a reserved name that user metadata cannot use.
 */
import { DEFAULT_CONTENT_TYPE, normalizeEtag } from '../../core/objects.js';
import { RESERVED_METADATA_PREFIX } from '../../core/options.js';
import type { ObjectAttributes, ObjectInfo } from '../../core/types.js';

/** The metadata name holding the object's SHA-256. */
export const SHA256_METADATA = `${RESERVED_METADATA_PREFIX}sha256`;

const PRINTABLE_ASCII = /^[\x20-\x7e]*$/;
const ENCODED_WORD = /^=\?UTF-8\?B\?([A-Za-z0-9+/=]*)\?=$/i;

function encodeValue(value: string): string {
  // Encode what headers cannot carry as-is, what HTTP would trim, and anything that
  // would otherwise be mistaken for an encoded word on the way back.
  const plain = PRINTABLE_ASCII.test(value) && value.trim() === value && !ENCODED_WORD.test(value);
  return plain ? value : `=?UTF-8?B?${Buffer.from(value, 'utf8').toString('base64')}?=`;
}

function decodeValue(value: string): string {
  const m = ENCODED_WORD.exec(value);
  return m ? Buffer.from(m[1] as string, 'base64').toString('utf8') : value;
}

/** S3 metadata for user metadata plus the SHA-256 (when known). */
export function toS3Metadata(metadata: Record<string, string>, sha256: string | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(metadata)) out[name] = encodeValue(value);
  if (sha256 !== undefined) out[SHA256_METADATA] = sha256;
  return out;
}

/** What HeadObject / GetObject tell about an object. */
export interface S3ObjectFields {
  ContentLength?: number;
  ETag?: string;
  ContentType?: string;
  LastModified?: Date;
  Metadata?: Record<string, string>;
  CacheControl?: string;
  ContentDisposition?: string;
}

/** Builds ObjectInfo from S3's fields; `size` overrides ContentLength (which is a range's length for ranged GETs). */
export function objectInfoFromS3(key: string, fields: S3ObjectFields, size = fields.ContentLength ?? 0): ObjectInfo {
  const metadata: Record<string, string> = {};
  let sha256: string | undefined;
  for (const [rawName, value] of Object.entries(fields.Metadata ?? {})) {
    const name = rawName.toLowerCase();
    if (name === SHA256_METADATA) sha256 = /^[0-9a-f]{64}$/.test(value) ? value : undefined;
    else if (!name.startsWith(RESERVED_METADATA_PREFIX)) metadata[name] = decodeValue(value);
  }
  return {
    key,
    size,
    etag: normalizeEtag(fields.ETag ?? ''),
    sha256,
    contentType: fields.ContentType ?? DEFAULT_CONTENT_TYPE,
    lastModified: fields.LastModified ?? new Date(0),
    metadata,
    cacheControl: fields.CacheControl,
    contentDisposition: fields.ContentDisposition,
  };
}

/** The info of an object just written with these attributes (`metadata` as the caller gave it), before any stat. */
export function writtenInfo(key: string, w: ObjectAttributes & { size: number; sha256?: string; etag?: string }): ObjectInfo {
  return {
    key,
    size: w.size,
    etag: normalizeEtag(w.etag ?? ''),
    sha256: w.sha256,
    contentType: w.contentType,
    // S3 keeps whole seconds; the server's value is what stat reports later.
    lastModified: new Date(),
    metadata: { ...w.metadata },
    cacheControl: w.cacheControl,
    contentDisposition: w.contentDisposition,
  };
}
