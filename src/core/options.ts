/**
 * Validation of caller-supplied options, done once in Storage so drivers only ever
 * see well-formed values, and bad input fails with a message naming the option.
 */
import { isActiveContentType } from './active-types.js';
import { StorageError } from './errors.js';
import type { PutBodyChecks } from './body.js';
import { normalizePrefix } from './keys.js';
import { guessContentType, isBareEtag, normalizeEtag } from './objects.js';
import type { DriverListOptions, DriverPresignPostOptions, DriverPutOptions, DriverReadOptions, DriverSignedUrlOptions } from './contract.js';
import type { GetOptions, ListOptions, PresignPostOptions, PutOptions, SignedUrlOptions } from './types.js';

/** The most bytes of user metadata (names plus values), the S3 limit. */
export const MAX_METADATA_BYTES = 2048;
/** User metadata names with this prefix are reserved (backends store Stowage's own fields there). */
export const RESERVED_METADATA_PREFIX = 'stowage-';
/** The longest a signed URL may live: 7 days, as on S3. */
export const MAX_EXPIRES_IN = 7 * 24 * 3600;
/** Largest page `list` returns. */
export const MAX_LIST_LIMIT = 1000;

// type/subtype with optional parameters of printable ASCII: a header value every client
// can send back and Node can serve (a character outside Latin-1 makes Node refuse the
// whole response, and a signed PUT bound to one could never be used).
const CONTENT_TYPE = /^[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]*\/[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]*([ \t]*;[\x20-\x7e]*)?$/;
const METADATA_NAME = /^[a-z0-9][a-z0-9_-]*$/;
// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u001f\u007f]/;
const SHA256_HEX = /^[0-9a-f]{64}$/;

/**
 * A refused option. The message names the option and the rule, and holds nothing but
 * what the caller passed, so it is also the public message: an HTTP client learns what
 * to change.
 */
export function invalid(message: string): StorageError {
  return new StorageError('E_INVALID_ARGUMENT', message, { publicMessage: message });
}

/** Checks a content type; returns it unchanged. */
export function validateContentType(contentType: unknown, option = 'contentType'): string {
  if (typeof contentType !== 'string' || !CONTENT_TYPE.test(contentType) || contentType.length > 255) {
    throw invalid(`${option} ${JSON.stringify(contentType)} is not a valid MIME type such as "image/jpeg"`);
  }
  return contentType;
}

/**
 * Checks user metadata and returns a copy with lowercased names, so it round-trips
 * the same on every backend (S3 lowercases names). Names: letters, digits, `-`, `_`;
 * values: strings without control characters; 2 KiB in all.
 */
export function normalizeMetadata(metadata: unknown): Record<string, string> {
  if (metadata === undefined) return {};
  if (typeof metadata !== 'object' || metadata === null || Array.isArray(metadata)) {
    throw invalid('metadata must be an object of string values');
  }
  const out: Record<string, string> = {};
  let bytes = 0;
  for (const [rawName, value] of Object.entries(metadata)) {
    const name = rawName.toLowerCase();
    if (!METADATA_NAME.test(name)) {
      throw invalid(`metadata name ${JSON.stringify(rawName)} may only hold letters, digits, "-" and "_"`);
    }
    if (name.startsWith(RESERVED_METADATA_PREFIX)) {
      throw invalid(`metadata name ${JSON.stringify(rawName)} is reserved: names starting with "${RESERVED_METADATA_PREFIX}" hold Stowage's own data`);
    }
    if (name in out) throw invalid(`metadata names ${JSON.stringify(rawName)} and another differ only by case`);
    if (typeof value !== 'string') throw invalid(`metadata value of ${JSON.stringify(rawName)} must be a string`);
    if (CONTROL.test(value)) throw invalid(`metadata value of ${JSON.stringify(rawName)} contains a control character`);
    bytes += Buffer.byteLength(name) + Buffer.byteLength(value);
    out[name] = value;
  }
  if (bytes > MAX_METADATA_BYTES) throw invalid(`metadata is ${bytes} bytes; the limit is ${MAX_METADATA_BYTES}`);
  return out;
}

function headerValue(value: unknown, option: string): string | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'string' || value === '' || CONTROL.test(value) || value.length > 1024) {
    throw invalid(`${option} must be a non-empty header value without control characters`);
  }
  return value;
}

/** Validates put options into what a driver receives. The content type defaults to a guess from the key. */
export function driverPutOptions(key: string, opts: PutOptions): DriverPutOptions {
  if (opts.ifNoneMatch !== undefined && opts.ifNoneMatch !== '*') throw invalid('ifNoneMatch only accepts "*"');
  if (opts.ifNoneMatch !== undefined && opts.ifMatch !== undefined) throw invalid('use either ifMatch or ifNoneMatch, not both');
  if (opts.ifMatch !== undefined && (typeof opts.ifMatch !== 'string' || normalizeEtag(opts.ifMatch) === '')) {
    throw invalid('ifMatch must be a non-empty ETag');
  }
  return {
    contentType: opts.contentType === undefined ? guessContentType(key) : validateContentType(opts.contentType),
    metadata: normalizeMetadata(opts.metadata),
    cacheControl: headerValue(opts.cacheControl, 'cacheControl'),
    contentDisposition: headerValue(opts.contentDisposition, 'contentDisposition'),
    ifNoneMatch: opts.ifNoneMatch,
    ifMatch: opts.ifMatch === undefined ? undefined : normalizeEtag(opts.ifMatch),
    signal: opts.signal,
  };
}

/**
 * Checks a read's `ifNoneMatch` and returns the bare ETag a driver compares (quotes and
 * a `W/` prefix removed: If-None-Match compares weakly), or undefined without one.
 */
function normalizeIfNoneMatch(ifNoneMatch: unknown): string | undefined {
  if (ifNoneMatch === undefined) return undefined;
  const etag = typeof ifNoneMatch === 'string' ? normalizeEtag(ifNoneMatch.trim()) : '';
  if (etag === '*') throw invalid('ifNoneMatch of a read takes one ETag, not "*"');
  if (!isBareEtag(etag)) throw invalid('ifNoneMatch must be one ETag: printable ASCII without spaces, commas or inner quotes');
  return etag;
}

/** A read's options as a driver receives them: `ifNoneMatch`, when given, checked and bare. */
export function driverReadOptions(opts: GetOptions & { ifNoneMatch?: string }): DriverReadOptions {
  return opts.ifNoneMatch === undefined ? opts : { ...opts, ifNoneMatch: normalizeIfNoneMatch(opts.ifNoneMatch) };
}

/** Checks an expected SHA-256 and returns it in lowercase. */
export function normalizeSha256(sha256: unknown): string | undefined {
  if (sha256 === undefined) return undefined;
  const lower = typeof sha256 === 'string' ? sha256.toLowerCase() : '';
  if (!SHA256_HEX.test(lower)) throw invalid('sha256 must be 64 hexadecimal digits');
  return lower;
}

/** Checks a size limit: a non-negative safe integer. */
export function validateMaxSize(maxSize: unknown, option = 'maxSize'): number | undefined {
  if (maxSize === undefined) return undefined;
  if (typeof maxSize !== 'number' || !Number.isSafeInteger(maxSize) || maxSize < 0) {
    throw invalid(`${option} must be a whole number of bytes >= 0`);
  }
  return maxSize;
}

/** How long signed URLs and POST forms live unless told otherwise: 1 hour. */
export const DEFAULT_EXPIRES_IN = 3600;

/** Checks an expiry in seconds, applying the 1-hour default. */
export function validateExpiresIn(expiresIn: unknown): number {
  if (expiresIn === undefined) return DEFAULT_EXPIRES_IN;
  if (typeof expiresIn !== 'number' || !Number.isInteger(expiresIn) || expiresIn < 1 || expiresIn > MAX_EXPIRES_IN) {
    throw invalid(`expiresIn must be a whole number of seconds from 1 to ${MAX_EXPIRES_IN} (7 days)`);
  }
  return expiresIn;
}

/** Validates POST-form options; the result always has `expiresIn`. */
export function validatePresignPostOptions(opts: PresignPostOptions): DriverPresignPostOptions {
  if (opts === null || typeof opts !== 'object') throw invalid('presignPost needs options { expiresIn?, contentType?, maxSize? }');
  const expiresIn = validateExpiresIn(opts.expiresIn);
  if (opts.contentType !== undefined) validateContentType(opts.contentType);
  validateMaxSize(opts.maxSize);
  return { ...opts, expiresIn };
}

/** Validates signed-URL options; the result always has `expiresIn`. */
export function validateSignedUrlOptions(opts: SignedUrlOptions): DriverSignedUrlOptions {
  if (opts === null || typeof opts !== 'object') throw invalid('signedUrl needs options { method, expiresIn? }');
  if (opts.method !== 'GET' && opts.method !== 'PUT') throw invalid('signedUrl method must be "GET" or "PUT"');
  const expiresIn = validateExpiresIn(opts.expiresIn);
  if (opts.method === 'GET' && (opts.contentType !== undefined || opts.maxSize !== undefined || opts.contentLength !== undefined)) {
    throw invalid('contentType, maxSize and contentLength only apply to PUT signed URLs');
  }
  if (opts.method === 'PUT' && (opts.download !== undefined || opts.responseContentType !== undefined || opts.variant !== undefined)) {
    throw invalid('download, responseContentType and variant only apply to GET signed URLs');
  }
  if (opts.variant !== undefined && opts.responseContentType !== undefined) throw invalid('a variant has its own type: use either variant or responseContentType');
  if (opts.responseContentType !== undefined) {
    validateContentType(opts.responseContentType, 'responseContentType');
    // A link must not turn a stored file into a page that runs on the service's origin.
    if (isActiveContentType(opts.responseContentType)) {
      throw invalid(`responseContentType ${JSON.stringify(opts.responseContentType)} is a type browsers run as a page (HTML, SVG, XML, JavaScript); a signed link cannot serve a file as one`);
    }
  }
  if (opts.contentType !== undefined) validateContentType(opts.contentType);
  validateMaxSize(opts.maxSize);
  validateMaxSize(opts.contentLength, 'contentLength');
  if (opts.maxSize !== undefined && opts.contentLength !== undefined) throw invalid('use either maxSize or contentLength, not both');
  // A lone surrogate cannot be put in a URL as it is (it becomes U+FFFD), so the link
  // would never match its own signature.
  if (opts.download !== undefined && (typeof opts.download !== 'string' || opts.download === '' || CONTROL.test(opts.download) || opts.download.length > 255 || !opts.download.isWellFormed())) {
    throw invalid('download must be a file name of 1-255 characters without control characters or unpaired surrogates');
  }
  return { ...opts, expiresIn };
}

/** What a write's body is checked against and reports to while it streams, validated; `size` when known (a file's). */
export function bodyChecks(opts: PutOptions, size?: number): PutBodyChecks {
  if (opts.onProgress !== undefined && typeof opts.onProgress !== 'function') throw new StorageError('E_INVALID_ARGUMENT', 'onProgress must be a function');
  return { sha256: normalizeSha256(opts.sha256), maxSize: validateMaxSize(opts.maxSize), signal: opts.signal, onProgress: opts.onProgress, size: size ?? validateMaxSize(opts.size, 'size') };
}

/** Validates `list` options and fills in the defaults; E_INVALID_ARGUMENT names the bad one. */
export function driverListOptions(opts: ListOptions): DriverListOptions {
  const limit = opts.limit ?? MAX_LIST_LIMIT;
  if (!Number.isInteger(limit) || limit < 1 || limit > MAX_LIST_LIMIT) {
    throw new StorageError('E_INVALID_ARGUMENT', `limit must be a whole number from 1 to ${MAX_LIST_LIMIT}`);
  }
  if (opts.delimiter !== undefined && (typeof opts.delimiter !== 'string' || opts.delimiter === '')) {
    throw new StorageError('E_INVALID_ARGUMENT', 'delimiter must be a non-empty string');
  }
  if (opts.cursor !== undefined && typeof opts.cursor !== 'string') {
    throw new StorageError('E_INVALID_ARGUMENT', 'cursor must be the string from the previous page');
  }
  if (opts.startAfter !== undefined && typeof opts.startAfter !== 'string') throw new StorageError('E_INVALID_ARGUMENT', 'startAfter must be a key');
  return { prefix: normalizePrefix(opts.prefix), delimiter: opts.delimiter, cursor: opts.cursor, startAfter: opts.startAfter, limit, signal: opts.signal };
}
