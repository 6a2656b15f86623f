/**
 * Keys: the one normalizer every driver sits behind, byte-order comparison, and
 * key templates that build keys from trusted parts.
 *
 * The rules are the portable intersection of what S3-compatible services and
 * filesystems accept safely, so a key that works on one backend works on all.
 */
import type * as Uuid from 'uuid';
import { createHash } from 'node:crypto';
import { StorageError } from './errors.js';
import { lazyModule } from './lazy.js';
import { extensionFromContentType } from './objects.js';

/** uuid, required when the first key with `{uuid}` is built, not by importing Stowage. */
const uuid = lazyModule<typeof Uuid>('uuid', 'keys with {uuid}');

/** The longest key accepted, in UTF-8 bytes (the S3 limit). */
export const MAX_KEY_BYTES = 1024;

// C0 controls, DEL and C1 controls. Line breaks, tabs and NUL all land here.
// eslint-disable-next-line no-control-regex
const CONTROL_CHARS = /[\u0000-\u001f\u007f-\u009f]/;

function invalidKey(key: string, reason: string): StorageError {
  return new StorageError('E_INVALID_KEY', `invalid key ${JSON.stringify(key)}: ${reason}`, { key });
}

/**
 * Checks a key against the key rules and returns it in Unicode NFC form.
 * Throws E_INVALID_KEY naming the broken rule: empty, longer than 1024 UTF-8 bytes,
 * control characters (NUL included), backslash, a leading `/`, a trailing `/`,
 * empty segments (`a//b`), or `.` / `..` segments. Everything else, spaces, `+`,
 * `%`, `#`, `?`, `&`, `=` and any Unicode letter or emoji, is an ordinary character.
 */
export function normalizeKey(key: unknown): string {
  if (typeof key !== 'string') {
    throw new StorageError('E_INVALID_KEY', `invalid key: expected a string, got ${typeof key}`);
  }
  if (key.length === 0) throw invalidKey(key, 'it is empty');
  if (!key.isWellFormed()) throw invalidKey(key, 'it contains an unpaired UTF-16 surrogate');
  const nfc = key.normalize('NFC');
  checkCharacters(nfc, key);
  if (nfc.startsWith('/')) throw invalidKey(key, 'it starts with "/"; keys are relative');
  if (nfc.endsWith('/')) throw invalidKey(key, 'it ends with "/"; that names a folder, not an object');
  for (const segment of nfc.split('/')) checkSegment(segment, key);
  const bytes = Buffer.byteLength(nfc, 'utf8');
  if (bytes > MAX_KEY_BYTES) throw invalidKey(key, `it is ${bytes} UTF-8 bytes long; the limit is ${MAX_KEY_BYTES}`);
  return nfc;
}

/**
 * True when `key` can be addressed exactly as it is: it passes the key rules and is
 * already in NFC form. Objects other tools wrote (folder markers, names in another
 * normalization form, control characters) may not be, and listings leave them out.
 */
export function isAddressableKey(key: string): boolean {
  try {
    return normalizeKey(key) === key;
  } catch {
    return false;
  }
}

/**
 * Normalizes a listing prefix. The empty prefix (everything) is allowed, and so is a
 * trailing `/`; otherwise the key rules apply, so a prefix can never climb out with `..`.
 */
export function normalizePrefix(prefix: unknown): string {
  if (prefix === undefined || prefix === '') return '';
  if (typeof prefix !== 'string') {
    throw new StorageError('E_INVALID_KEY', `invalid prefix: expected a string, got ${typeof prefix}`);
  }
  const trailing = prefix.endsWith('/');
  const body = trailing ? prefix.slice(0, -1) : prefix;
  if (body === '') throw invalidKey(prefix, 'a prefix cannot be "/" alone; use "" for everything');
  return normalizeKey(body) + (trailing ? '/' : '');
}

function checkCharacters(nfc: string, original: string): void {
  const control = CONTROL_CHARS.exec(nfc);
  if (control) {
    const code = control[0].codePointAt(0) ?? 0;
    const name = code === 0 ? 'NUL' : `U+${code.toString(16).toUpperCase().padStart(4, '0')}`;
    throw invalidKey(original, `it contains the control character ${name} at position ${control.index}`);
  }
  if (nfc.includes('\\')) throw invalidKey(original, 'it contains a backslash; use "/" to separate folders');
}

function checkSegment(segment: string, original: string): void {
  if (segment === '') throw invalidKey(original, 'it contains an empty segment ("//")');
  if (segment === '.' || segment === '..') {
    throw invalidKey(original, `it contains a "${segment}" segment; relative path parts are not allowed`);
  }
}

/**
 * Compares two keys in UTF-8 byte order, the order S3 lists in. JavaScript's own
 * string order is UTF-16 code-unit order, which puts characters beyond U+FFFF (emoji)
 * before U+E000..U+FFFF; remapping the first differing code units fixes that without
 * allocating, which matters because listings sort with this.
 */
export function compareKeys(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const x = a.charCodeAt(i);
    const y = b.charCodeAt(i);
    if (x !== y) return codePointRank(x) - codePointRank(y);
  }
  return a.length - b.length;
}

// Surrogates (code points >= U+10000) rank above U+E000..U+FFFF, as in UTF-8.
function codePointRank(unit: number): number {
  if (unit >= 0xd800 && unit <= 0xdfff) return unit + 0x2000;
  if (unit >= 0xe000) return unit - 0x800;
  return unit;
}

/** Percent-encodes each segment of a key for use in a URL path, keeping the `/` separators. */
export function encodeKeyPath(key: string): string {
  return key.split('/').map(encodeURIComponent).join('/');
}

/** A template that builds keys such as `user_photos/{userId}/{uuid}.{ext}`. */
export interface KeyTemplate {
  /** The template text as given. */
  readonly pattern: string;
  /** The placeholders the caller must supply (built-ins excluded). */
  readonly placeholders: readonly string[];
  /**
   * Builds a key. Every caller-supplied value must be one safe segment: a
   * non-empty string or number without `/`, `\`, control characters, and not `.`
   * or `..`. `{ext}` comes from `values.ext`, or else from `values.contentType`.
   * The result passes {@link normalizeKey}.
   */
  build(values?: Record<string, string | number | undefined>): string;
}

/** Placeholders Stowage fills in itself. */
const BUILT_INS = new Set(['uuid', 'date', 'yyyy', 'mm', 'dd', 'hash2', 'ext']);
const PLACEHOLDER = /\{([A-Za-z_][A-Za-z0-9_]*)\}/g;
const MAX_SEGMENT_VALUE_BYTES = 255;

/**
 * Creates a {@link KeyTemplate}. Built-ins: `{uuid}` (a time-ordered UUID v7),
 * `{date}` (`YYYY-MM-DD`), `{yyyy}`, `{mm}`, `{dd}` (UTC), `{hash2}` (two hex digits
 * from the build's UUID, to spread keys over shards) and `{ext}` (see `build`).
 * Client file names should never be passed in: keys are built from trusted parts.
 */
export function keyTemplate(pattern: string): KeyTemplate {
  if (typeof pattern !== 'string' || pattern === '') {
    throw new StorageError('E_INVALID_ARGUMENT', 'key template must be a non-empty string');
  }
  const names = [...pattern.matchAll(PLACEHOLDER)].map((m) => m[1] as string);
  const leftover = pattern.replace(PLACEHOLDER, '');
  if (/[{}]/.test(leftover)) {
    throw new StorageError('E_INVALID_ARGUMENT', `key template ${JSON.stringify(pattern)} has an unbalanced or malformed placeholder`);
  }
  // The static parts must already obey the key rules, so a template cannot smuggle in "..".
  normalizeKey(pattern.replace(PLACEHOLDER, 'x'));
  const placeholders = [...new Set(names.filter((n) => !BUILT_INS.has(n)))];

  return {
    pattern,
    placeholders,
    build(values = {}) {
      const id = uuid().v7();
      const now = new Date();
      const yyyy = String(now.getUTCFullYear());
      const mm = String(now.getUTCMonth() + 1).padStart(2, '0');
      const dd = String(now.getUTCDate()).padStart(2, '0');
      const builtIns: Record<string, () => string> = {
        uuid: () => id,
        date: () => `${yyyy}-${mm}-${dd}`,
        yyyy: () => yyyy,
        mm: () => mm,
        dd: () => dd,
        hash2: () => createHash('sha256').update(id).digest('hex').slice(0, 2),
        ext: () => extensionFor(values),
      };
      const key = pattern.replace(PLACEHOLDER, (_m, name: string) => {
        const builtIn = builtIns[name];
        return builtIn ? builtIn() : segmentValue(name, values[name], pattern);
      });
      return normalizeKey(key);
    },
  };
}

function segmentValue(name: string, value: unknown, pattern: string): string {
  if (value === undefined || value === null) {
    throw new StorageError('E_INVALID_ARGUMENT', `key template ${JSON.stringify(pattern)} needs a value for {${name}}`);
  }
  if (typeof value !== 'string' && typeof value !== 'number') {
    throw new StorageError('E_INVALID_ARGUMENT', `{${name}} must be a string or number, got ${typeof value}`);
  }
  const text = String(value).normalize('NFC');
  const problem = segmentProblem(text);
  if (problem) {
    throw new StorageError('E_INVALID_KEY', `{${name}} value ${JSON.stringify(text)} is not one safe key segment: ${problem}`);
  }
  return text;
}

/**
 * Why `text` is not one safe key segment (a template value, an identity), or undefined
 * when it is: empty, `.` or `..`, holding `/`, `\`, a control character or an unpaired
 * surrogate, or longer than 255 UTF-8 bytes. It does not normalize: callers decide.
 */
export function segmentProblem(text: string): string | undefined {
  if (text === '') return 'it is empty';
  if (!text.isWellFormed()) return 'it contains an unpaired UTF-16 surrogate';
  if (text === '.' || text === '..') return `"${text}" is a relative path part`;
  if (text.includes('/')) return 'it contains "/"';
  if (text.includes('\\')) return 'it contains a backslash';
  if (CONTROL_CHARS.test(text)) return 'it contains a control character';
  if (Buffer.byteLength(text) > MAX_SEGMENT_VALUE_BYTES) return `it is longer than ${MAX_SEGMENT_VALUE_BYTES} bytes`;
  return undefined;
}

function extensionFor(values: Record<string, unknown>): string {
  const { ext, contentType } = values;
  if (ext !== undefined) {
    if (typeof ext !== 'string' || !/^[A-Za-z0-9]{1,16}$/.test(ext)) {
      throw new StorageError('E_INVALID_ARGUMENT', `{ext} must be 1-16 letters or digits, got ${JSON.stringify(ext)}`);
    }
    return ext.toLowerCase();
  }
  if (typeof contentType === 'string') {
    const found = extensionFromContentType(contentType.split(';')[0]?.trim() ?? '');
    if (found) return found;
    throw new StorageError('E_INVALID_ARGUMENT', `no file extension is known for content type ${JSON.stringify(contentType)}`);
  }
  throw new StorageError('E_INVALID_ARGUMENT', '{ext} needs either an "ext" or a "contentType" value');
}

/**
 * The first key segment Stowage keeps for its own files in a backend (fs: sidecars, temp
 * files, sessions; S3: upload and session state). No user key may lie there, and
 * listings leave it out.
 */
export const RESERVED_SEGMENT = '.stowage';

/** Whether `key` (or a listed prefix) lies in the reserved area, or is its name. */
export function isReservedKey(key: string): boolean {
  return key === RESERVED_SEGMENT || key.startsWith(`${RESERVED_SEGMENT}/`);
}

/** Refuses a key in the reserved area with E_INVALID_KEY naming the backend that reserves it. */
export function checkNotReserved(key: string, backend: string): void {
  if (isReservedKey(key)) throw new StorageError('E_INVALID_KEY', `invalid key ${JSON.stringify(key)}: "${RESERVED_SEGMENT}/" is reserved by the ${backend} backend for Stowage's own files`, { key });
}

