/**
 * The tus 1.0 resumable upload protocol's headers (tus.io/protocols/resumable-upload),
 * parsed and checked exactly as the specification words them, apart from any route or
 * backend: a malformed header is E_INVALID_ARGUMENT naming it (400), a client speaking
 * another protocol version E_PRECONDITION_FAILED (412, with `Tus-Version`). Everything
 * here is a pure function of header values.
 */
import { StorageError } from '../../core/errors.js';
import { WRITE_CHECKSUM_ALGORITHMS, WRITE_CHECKSUM_BYTES } from '../../core/sessions.js';

/** The protocol version served. */
export const TUS_VERSION = '1.0.0';
/** The extensions served, as OPTIONS lists them in `Tus-Extension`. */
export const TUS_EXTENSIONS = ['creation', 'creation-with-upload', 'creation-defer-length', 'termination', 'expiration', 'checksum', 'concatenation'] as const;
/** The checksum algorithms `Upload-Checksum` may name (the extension requires sha1), as `Tus-Checksum-Algorithm` lists them. */
export const TUS_CHECKSUM_ALGORITHMS = WRITE_CHECKSUM_ALGORITHMS;
/** A checksum algorithm of {@link TUS_CHECKSUM_ALGORITHMS}. */
export type TusChecksumAlgorithm = (typeof TUS_CHECKSUM_ALGORITHMS)[number];
/** The largest `Upload-Metadata` accepted, in bytes: it is kept with the upload and echoed on every HEAD. */
export const MAX_METADATA_BYTES = 4096;

/** Strict Base64 (RFC 4648 section 4, padded): what the specification requires of values and checksums. */
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;
/** A whole number of bytes or an offset: decimal digits only (no sign, no exponent). */
const DIGITS = /^[0-9]{1,16}$/;
/** Methods a client may tunnel through POST with `X-HTTP-Method-Override` (where a proxy blocks them). */
const OVERRIDABLE = new Set(['PATCH', 'DELETE']);

function invalid(header: string, message: string): StorageError {
  return new StorageError('E_INVALID_ARGUMENT', `${header}: ${message}`, { details: { header } });
}

/**
 * The method a request stands for: a POST with `X-HTTP-Method-Override: PATCH` (or
 * DELETE) is that method; any other override is refused, as is one on another method.
 */
export function effectiveMethod(method: string, override: string | undefined): string {
  if (override === undefined || override === '') return method.toUpperCase();
  const wanted = override.trim().toUpperCase();
  if (method.toUpperCase() !== 'POST') throw invalid('X-HTTP-Method-Override', `only a POST may carry it (this is a ${method.toUpperCase()})`);
  if (!OVERRIDABLE.has(wanted)) throw invalid('X-HTTP-Method-Override', `must be PATCH or DELETE (got ${JSON.stringify(override)})`);
  return wanted;
}

/** Refuses a request (other than OPTIONS) whose `Tus-Resumable` is not the version served: 412, to be answered with `Tus-Version`. */
export function checkResumable(value: string | undefined): void {
  if (value === TUS_VERSION) return;
  const got = value === undefined ? 'no Tus-Resumable header' : `Tus-Resumable ${JSON.stringify(value)}`;
  throw new StorageError('E_PRECONDITION_FAILED', `this server speaks tus ${TUS_VERSION}, and the request has ${got}`, { details: { header: 'Tus-Resumable', tusVersion: TUS_VERSION } });
}

/** A whole number of bytes from a header, or E_INVALID_ARGUMENT naming it. */
export function parseBytes(header: string, value: string): number {
  const n = DIGITS.test(value) ? Number(value) : Number.NaN;
  if (!Number.isSafeInteger(n)) throw invalid(header, `must be a whole number of bytes (got ${JSON.stringify(value)})`);
  return n;
}

/** What a creation says of the upload's length: known (`size`) or deferred. */
export type UploadLength = { size: number; deferred?: undefined } | { size?: undefined; deferred: true };

/**
 * The length of an upload being created: exactly one of `Upload-Length` (a whole number)
 * and `Upload-Defer-Length: 1` must be given.
 */
export function parseUploadLength(length: string | undefined, deferLength: string | undefined): UploadLength {
  if (length !== undefined && deferLength !== undefined) throw invalid('Upload-Length', 'give either Upload-Length or Upload-Defer-Length, not both');
  if (length !== undefined) return { size: parseBytes('Upload-Length', length) };
  if (deferLength === undefined) throw invalid('Upload-Length', 'a creation needs Upload-Length, or Upload-Defer-Length: 1 when the length is not known yet');
  if (deferLength !== '1') throw invalid('Upload-Defer-Length', `must be 1 (got ${JSON.stringify(deferLength)})`);
  return { deferred: true };
}

/**
 * `Upload-Metadata`: comma-separated pairs of a key (no spaces or commas, unique, not
 * empty) and its Base64 value, which may be left out. Values are decoded as UTF-8.
 */
export function parseMetadata(value: string | undefined): Map<string, string> {
  const pairs = new Map<string, string>();
  if (value === undefined || value.trim() === '') return pairs;
  const bytes = Buffer.byteLength(value);
  if (bytes > MAX_METADATA_BYTES) throw invalid('Upload-Metadata', `is ${bytes} bytes; at most ${MAX_METADATA_BYTES} are kept`);
  const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });
  for (const pair of value.split(',')) {
    const [key = '', encoded = '', ...rest] = pair.trim().split(' ');
    if (key === '' || rest.length > 0) throw invalid('Upload-Metadata', `each pair is a key, a space and a Base64 value (got ${JSON.stringify(pair.trim())})`);
    if (!/^[\x21-\x7e]+$/.test(key)) throw invalid('Upload-Metadata', `the key ${JSON.stringify(key)} must be printable ASCII`);
    if (pairs.has(key)) throw invalid('Upload-Metadata', `the key ${JSON.stringify(key)} is given twice`);
    if (!BASE64.test(encoded)) throw invalid('Upload-Metadata', `the value of ${JSON.stringify(key)} is not Base64`);
    try {
      pairs.set(key, utf8.decode(Buffer.from(encoded, 'base64')));
    } catch {
      throw invalid('Upload-Metadata', `the value of ${JSON.stringify(key)} is not UTF-8 text`);
    }
  }
  return pairs;
}

/** `Upload-Metadata` for `pairs`, as a HEAD answers it. */
export function formatMetadata(pairs: ReadonlyMap<string, string>): string {
  return [...pairs].map(([key, text]) => (text === '' ? key : `${key} ${Buffer.from(text, 'utf8').toString('base64')}`)).join(',');
}

/** A checksum a PATCH's body must match (the checksum extension). */
export interface TusChecksum {
  algorithm: TusChecksumAlgorithm;
  digest: Buffer;
}

/** `Upload-Checksum: <algorithm> <Base64 digest>`, with an algorithm of {@link TUS_CHECKSUM_ALGORITHMS} and a digest of its length. */
export function parseChecksum(value: string | undefined): TusChecksum | undefined {
  if (value === undefined) return undefined;
  const [algorithm = '', encoded = '', ...rest] = value.trim().split(' ');
  if (rest.length > 0 || encoded === '') throw invalid('Upload-Checksum', `must be an algorithm, a space and a Base64 digest (got ${JSON.stringify(value)})`);
  if (!(TUS_CHECKSUM_ALGORITHMS as readonly string[]).includes(algorithm)) throw invalid('Upload-Checksum', `the algorithm must be one of ${TUS_CHECKSUM_ALGORITHMS.join(', ')} (got ${JSON.stringify(algorithm)})`);
  const digest = BASE64.test(encoded) ? Buffer.from(encoded, 'base64') : undefined;
  const expected = WRITE_CHECKSUM_BYTES[algorithm as TusChecksumAlgorithm];
  if (digest?.length !== expected) throw invalid('Upload-Checksum', `a ${algorithm} digest is ${expected} bytes in Base64`);
  return { algorithm: algorithm as TusChecksumAlgorithm, digest };
}

/** What `Upload-Concat` says: a part of a later concatenation, or the final upload joining `ids` in order. */
export type UploadConcat = { kind: 'partial' } | { kind: 'final'; ids: string[] };

/**
 * `Upload-Concat: partial`, or `final;<url> <url> ...` naming partial uploads of this
 * server, absolute or relative. Each URL's path must be `basePath` and an upload id
 * (`idPattern`); its host is not compared, so URLs behind a proxy that rewrites it still
 * name the right uploads. A URL given twice is refused.
 */
export function parseConcat(value: string | undefined, basePath: string, idPattern: RegExp): UploadConcat | undefined {
  if (value === undefined) return undefined;
  const trimmed = value.trim();
  if (trimmed === 'partial') return { kind: 'partial' };
  if (!trimmed.startsWith('final;')) throw invalid('Upload-Concat', `must be "partial" or "final;" followed by the partial uploads' URLs (got ${JSON.stringify(value)})`);
  const urls = trimmed.slice('final;'.length).trim().split(/ +/).filter((u) => u !== '');
  if (urls.length === 0) throw invalid('Upload-Concat', 'a final upload names at least one partial upload');
  const ids = urls.map((url) => {
    let path: string;
    try {
      path = new URL(url, 'http://relative.invalid').pathname;
    } catch {
      throw invalid('Upload-Concat', `${JSON.stringify(url)} is not a URL`);
    }
    const id = path.startsWith(basePath) ? path.slice(basePath.length) : '';
    if (!idPattern.test(id)) throw invalid('Upload-Concat', `${JSON.stringify(url)} is not an upload of this server (${basePath}<id>)`);
    return id;
  });
  if (new Set(ids).size !== ids.length) throw invalid('Upload-Concat', 'a partial upload is named twice');
  return { kind: 'final', ids };
}

/** `Upload-Expires`: the RFC 7231 date (IMF-fixdate) the specification asks for. */
export function formatExpires(at: Date): string {
  return at.toUTCString();
}
