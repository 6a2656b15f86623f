/**
 * HMAC-SHA256 signed URLs for backends that cannot presign themselves (fs, memory).
 * The URL points at the Stowage HTTP service (`{baseUrl}/files/{key}`), which checks
 * it with {@link verifySignedUrl}. GET and PUT links are used as they are; a POST link
 * is the action of a browser form ({@link createSignedPost}). The key, method, expiry and every optional field
 * are covered by the signature, and the signature is compared in constant time.
 * {@link SignedLinks} holds one storage's settings, so the storage both issues and
 * verifies its links and the secret is given in one place.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import { StorageError } from './errors.js';
import { encodeKeyPath, normalizeKey } from './keys.js';
import type { PresignedPost, PresignPostOptions, SignedUrl, SignedUrlOptions } from './types.js';
import { httpBaseUrl } from './urls.js';

/** The path segment signed URLs are served under, relative to the base URL. */
export const SIGNED_PATH = '/files/';
/** The shortest signing secret accepted. */
export const MIN_SECRET_LENGTH = 16;

/** What signs links: the service's base URL and the HMAC secret. */
export interface Signer {
  baseUrl: string;
  secret: string;
}

/** The methods a signed link can be made for; POST is a browser form upload. */
export type SignedMethod = 'GET' | 'PUT' | 'POST';

/** What a verified signed URL grants. */
export interface VerifiedSignedUrl {
  key: string;
  method: SignedMethod;
  contentType?: string;
  maxSize?: number;
  contentLength?: number;
  download?: string;
  responseContentType?: string;
  /** For GET: the image variant the link serves instead of the object itself. */
  variant?: string;
  expiresAt: Date;
}

const PARAMS = { method: 'X-Stowage-Method', expires: 'X-Stowage-Expires', contentType: 'X-Stowage-Content-Type', maxSize: 'X-Stowage-Max-Size', contentLength: 'X-Stowage-Content-Length', download: 'X-Stowage-Download', responseContentType: 'X-Stowage-Response-Content-Type', variant: 'X-Stowage-Variant', signature: 'X-Stowage-Signature' } as const;

/** The fields a signature covers. */
interface SignedFields {
  key: string;
  method: string;
  expires: number;
  contentType?: string;
  maxSize?: number;
  contentLength?: number;
  download?: string;
  responseContentType?: string;
  variant?: string;
}

/**
 * The canonical text that is signed; JSON so no field can bleed into another. The
 * variant, added later, is appended only when present, so links issued before still verify.
 */
function canonical(f: SignedFields): string {
  const optional = [f.contentType, f.maxSize, f.contentLength, f.download, f.responseContentType].map((v) => v ?? null);
  return JSON.stringify(['stowage-v1', f.key, f.method, f.expires, ...optional, ...(f.variant === undefined ? [] : [f.variant])]);
}

function hmac(secret: string, text: string): Buffer {
  return createHmac('sha256', secret).update(text).digest();
}

/** Checks and normalizes a base URL for signed links: http(s), no query or fragment, no trailing slash. */
export function normalizeBaseUrl(baseUrl: string, option = 'baseUrl'): string {
  const url = httpBaseUrl(baseUrl, option);
  if (`${url.pathname}/`.includes(SIGNED_PATH)) {
    throw new StorageError('E_CONFIG_INVALID', `${option} must not contain a "${SIGNED_PATH}" segment; signed links add it`);
  }
  return url.href.replace(/\/+$/, '');
}

/** Checks a signing secret is long enough to resist guessing. */
export function validateSecret(secret: string, option = 'signingSecret'): string {
  if (typeof secret !== 'string' || secret.length < MIN_SECRET_LENGTH) {
    throw new StorageError('E_CONFIG_INVALID', `${option} must be at least ${MIN_SECRET_LENGTH} characters long`);
  }
  return secret;
}

/** The signed `/files/` URL that carries `fields`. */
function signedLink(fields: SignedFields, { secret, baseUrl }: Signer): string {
  const query = new URLSearchParams({ [PARAMS.method]: fields.method, [PARAMS.expires]: String(fields.expires) });
  if (fields.contentType !== undefined) query.set(PARAMS.contentType, fields.contentType);
  if (fields.maxSize !== undefined) query.set(PARAMS.maxSize, String(fields.maxSize));
  if (fields.contentLength !== undefined) query.set(PARAMS.contentLength, String(fields.contentLength));
  if (fields.download !== undefined) query.set(PARAMS.download, fields.download);
  if (fields.responseContentType !== undefined) query.set(PARAMS.responseContentType, fields.responseContentType);
  if (fields.variant !== undefined) query.set(PARAMS.variant, fields.variant);
  query.set(PARAMS.signature, hmac(secret, canonical(fields)).toString('base64url'));
  return `${baseUrl}${SIGNED_PATH}${encodeKeyPath(fields.key)}?${query.toString()}`;
}

/** Issues a signed URL for a normalized key. `now` is injectable for tests. */
export function createSignedUrl(
  key: string,
  opts: SignedUrlOptions & { expiresIn: number },
  signer: Signer,
  now: number = Date.now(),
): SignedUrl {
  const expires = Math.floor(now / 1000) + opts.expiresIn;
  const fields: SignedFields = { key, method: opts.method, expires, contentType: opts.contentType, maxSize: opts.maxSize, contentLength: opts.contentLength, download: opts.download, responseContentType: opts.responseContentType, variant: opts.variant };
  const headers: Record<string, string> = {};
  if (opts.method === 'PUT' && opts.contentType !== undefined) headers['content-type'] = opts.contentType;
  if (opts.method === 'PUT' && opts.contentLength !== undefined) headers['content-length'] = String(opts.contentLength);
  return { url: signedLink(fields, signer), method: opts.method, headers, expiresAt: new Date(expires * 1000) };
}

/**
 * Issues a browser form upload for a normalized key: the form POSTs `fields` and then
 * the `file` field to `url` (multipart/form-data), as with an S3 POST policy. The
 * signed Content-Type, when given, is also a form field the service checks.
 */
export function createSignedPost(
  key: string,
  opts: PresignPostOptions & { expiresIn: number },
  signer: Signer,
  now: number = Date.now(),
): PresignedPost {
  const expires = Math.floor(now / 1000) + opts.expiresIn;
  const fields: SignedFields = { key, method: 'POST', expires, contentType: opts.contentType, maxSize: opts.maxSize };
  const formFields: Record<string, string> = opts.contentType === undefined ? {} : { 'Content-Type': opts.contentType };
  return { url: signedLink(fields, signer), fields: formFields, expiresAt: new Date(expires * 1000) };
}

function denied(reason: string): StorageError {
  return new StorageError('E_ACCESS_DENIED', `signed URL rejected: ${reason}`);
}

/**
 * Verifies a signed URL (absolute, or a request path such as `/files/a.jpg?...`) and
 * returns what it grants. Throws E_ACCESS_DENIED when it is malformed, tampered with,
 * expired, or made for another method than `method`.
 */
export function verifySignedUrl(
  url: string | URL,
  opts: { signingSecret: string; method?: string; now?: number },
): VerifiedSignedUrl {
  let parsed: URL;
  try {
    parsed = new URL(url, 'http://signed.invalid');
  } catch {
    throw denied('not a URL');
  }
  const at = parsed.pathname.indexOf(SIGNED_PATH);
  if (at === -1) throw denied(`the path has no "${SIGNED_PATH}" segment`);
  let key: string;
  try {
    key = parsed.pathname
      .slice(at + SIGNED_PATH.length)
      .split('/')
      .map(decodeURIComponent)
      .join('/');
  } catch {
    throw denied('the key is not valid percent-encoding');
  }
  const q = parsed.searchParams;
  const method = q.get(PARAMS.method);
  const expiresText = q.get(PARAMS.expires) ?? '';
  const signature = q.get(PARAMS.signature);
  if ((method !== 'GET' && method !== 'PUT' && method !== 'POST') || !/^\d{1,12}$/.test(expiresText) || !signature) {
    throw denied('a required parameter is missing or malformed');
  }
  const maxSizeText = q.get(PARAMS.maxSize);
  const lengthText = q.get(PARAMS.contentLength);
  if ((maxSizeText !== null && !/^\d{1,16}$/.test(maxSizeText)) || (lengthText !== null && !/^\d{1,16}$/.test(lengthText))) {
    throw denied('malformed size limit');
  }
  const fields: SignedFields = {
    key,
    method,
    expires: Number(expiresText),
    contentType: q.get(PARAMS.contentType) ?? undefined,
    maxSize: maxSizeText === null ? undefined : Number(maxSizeText),
    contentLength: lengthText === null ? undefined : Number(lengthText),
    download: q.get(PARAMS.download) ?? undefined,
    responseContentType: q.get(PARAMS.responseContentType) ?? undefined,
    variant: q.get(PARAMS.variant) ?? undefined,
  };
  const expected = hmac(opts.signingSecret, canonical(fields));
  const given = Buffer.from(signature, 'base64url');
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) throw denied('the signature does not match');
  if (fields.expires * 1000 <= (opts.now ?? Date.now())) throw denied('it has expired');
  if (opts.method !== undefined && opts.method.toUpperCase() !== (method as string)) {
    throw denied(`it was signed for ${method}, not ${opts.method.toUpperCase()}`);
  }
  return {
    key: normalizeKey(key),
    method,
    contentType: fields.contentType,
    maxSize: fields.maxSize,
    contentLength: fields.contentLength,
    download: fields.download,
    responseContentType: fields.responseContentType,
    ...(fields.variant === undefined ? {} : { variant: fields.variant }),
    expiresAt: new Date(fields.expires * 1000),
  };
}

/** The setting each signing option is read from by createStorageFromEnv, for messages. */
const SETTINGS = { baseUrl: 'baseUrl (STORAGE_PUBLIC_URL)', signingSecret: 'signingSecret (STORAGE_SIGNING_SECRET)' } as const;

/**
 * E_CONFIG_INVALID for signed links a storage was not given the settings for. Setting
 * names are no secret, so the public message names them too.
 */
function notConfigured(message: string, missing: readonly string[]): StorageError {
  const settings = missing.join(' and ');
  return new StorageError('E_CONFIG_INVALID', `${message}; missing: ${settings}`, {
    publicMessage: `Signed links are not configured on this server: set ${settings}.`,
  });
}

/**
 * The signed-link settings of one storage. A secret alone verifies links (a service
 * that only serves them); a secret and a base URL also issue them. Both are checked
 * when given: a short secret is refused even where it would only verify, since a
 * guessable secret lets anyone forge links.
 */
export class SignedLinks {
  readonly #secret: string | undefined;
  readonly #signer: Signer | undefined;
  readonly #hasBaseUrl: boolean;

  constructor(options: { baseUrl?: string; signingSecret?: string }) {
    const { baseUrl, signingSecret } = options;
    this.#secret = signingSecret === undefined ? undefined : validateSecret(signingSecret);
    this.#hasBaseUrl = baseUrl !== undefined;
    this.#signer = baseUrl !== undefined && this.#secret !== undefined ? { baseUrl: normalizeBaseUrl(baseUrl), secret: this.#secret } : undefined;
  }

  /** True when links can be issued (a base URL and a secret). */
  get canSign(): boolean {
    return this.#signer !== undefined;
  }

  /** A signed URL for a normalized key, or E_CONFIG_INVALID naming what signing lacks on `backend`. */
  signUrl(key: string, opts: SignedUrlOptions & { expiresIn: number }, backend: string): SignedUrl {
    return createSignedUrl(key, opts, this.#requireSigner('signed URLs', backend));
  }

  /** A signed form action for a normalized key, or E_CONFIG_INVALID naming what signing lacks on `backend`. */
  signPost(key: string, opts: PresignPostOptions & { expiresIn: number }, backend: string): PresignedPost {
    return createSignedPost(key, opts, this.#requireSigner('POST forms', backend));
  }

  /**
   * What a link grants a request made with `method` (HEAD checks a GET link, as the
   * HTTP service serves it); E_ACCESS_DENIED when refused, E_CONFIG_INVALID without a
   * secret, E_INVALID_ARGUMENT without a method (a check for any method would let a
   * PUT link be used to read, or the other way round).
   */
  verify(url: string | URL, method: string, backend: string): VerifiedSignedUrl {
    if (typeof method !== 'string' || method === '') throw new StorageError('E_INVALID_ARGUMENT', "verifySignedUrl needs the request's method (GET, HEAD, PUT or POST)");
    if (this.#secret === undefined) throw notConfigured(`signed links on the ${backend} backend are verified with the signingSecret option`, [SETTINGS.signingSecret]);
    const asked = method.toUpperCase();
    return verifySignedUrl(url, { signingSecret: this.#secret, method: asked === 'HEAD' ? 'GET' : asked });
  }

  /** The signer, or E_CONFIG_INVALID naming the settings that are missing for `what`: the backend can sign, the storage was just not given what signing needs. */
  #requireSigner(what: string, backend: string): Signer {
    if (this.#signer) return this.#signer;
    const missing = [this.#hasBaseUrl ? undefined : SETTINGS.baseUrl, this.#secret === undefined ? SETTINGS.signingSecret : undefined].filter((setting) => setting !== undefined);
    throw notConfigured(`${what} on the ${backend} backend need the baseUrl and signingSecret options`, missing);
  }
}
