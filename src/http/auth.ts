/**
 * Bearer API keys and JWTs. Each key has an identity (e.g. a user id), the key prefixes it
 * may touch (`{userId}` stands for its identity) and its permissions; a verified JWT
 * (HS256 or RS256) takes its identity from a claim and the prefixes and permissions configured for JWTs. Missing or unknown
 * keys get 401; a key outside its prefixes or permissions gets 403, so one user can
 * never read, list, overwrite or presign another's objects. Public-read prefixes allow
 * anonymous GET. Keys are compared by SHA-256 digest, in constant time.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { importSPKI, jwtVerify, type JWTPayload } from 'jose';
import { z } from 'zod';
import { StorageError } from '../core/errors.js';
import { normalizePrefix } from '../core/keys.js';

/** What a key may do. */
export const PERMISSIONS = ['read', 'write', 'delete', 'list', 'presign'] as const;
/** One permission. */
export type Permission = (typeof PERMISSIONS)[number];

// eslint-disable-next-line no-control-regex
const UNSAFE_IDENTITY_CHARS = /[/\\\u0000-\u001f]/;

/** True when an identity can stand in for `{userId}`: one key segment, never "." or "..". */
function isSafeIdentity(id: string): boolean {
  return id !== '' && id !== '.' && id !== '..' && !UNSAFE_IDENTITY_CHARS.test(id);
}

const keySchema = z.object({
  key: z.string().min(16, { error: 'API keys must be at least 16 characters' }),
  identity: z.string().refine(isSafeIdentity, { error: 'identity must be one key segment (no "/", "\\" or control characters)' }),
  prefixes: z.array(z.string()).min(1),
  permissions: z.array(z.enum(PERMISSIONS)).min(1),
});
const jwtSchema = z
  .object({
    /** HS256 shared secret. */
    secret: z.string().min(32, { error: 'the JWT secret must be at least 32 characters' }).optional(),
    /** RS256 public key, PEM (SPKI). */
    publicKey: z.string().optional(),
    /** The claim that holds the identity (default `sub`). */
    claim: z.string().default('sub'),
    issuer: z.string().optional(),
    audience: z.string().optional(),
    prefixes: z.array(z.string()).min(1),
    permissions: z.array(z.enum(PERMISSIONS)).min(1),
  })
  .refine((j) => (j.secret === undefined) !== (j.publicKey === undefined), { error: 'give exactly one of secret (HS256) or publicKey (RS256)' });
const authSchema = z.object({ keys: z.array(keySchema).default([]), publicRead: z.array(z.string()).default([]), jwt: jwtSchema.optional() });

/** The auth configuration, as written in STOWAGE_AUTH_FILE or STOWAGE_AUTH. */
export type AuthConfig = z.input<typeof authSchema>;

/** Who is calling, and what they may do. */
export interface Principal {
  identity: string;
  prefixes: string[];
  permissions: ReadonlySet<Permission>;
}

/** Thrown for requests without valid credentials (401). */
export class UnauthenticatedError extends Error {}

/** A key jwtVerify accepts: an imported RSA public key or an HMAC secret. */
type VerifyKey = Awaited<ReturnType<typeof importSPKI>> | Uint8Array;

/** How bearer JWTs are verified and turned into principals. */
interface JwtVerifier {
  key: Promise<VerifyKey>;
  algorithm: 'HS256' | 'RS256';
  claim: string;
  issuer?: string;
  audience?: string;
  prefixes: string[];
  permissions: ReadonlySet<Permission>;
}

/** Checks requests against the configured keys and, optionally, JWTs. */
export class Authenticator {
  readonly #keys: { digest: Buffer; principal: Principal }[];
  readonly #publicRead: string[];
  readonly #jwt: JwtVerifier | undefined;
  readonly #source: string;

  constructor(config: AuthConfig, source = 'auth configuration') {
    const parsed = authSchema.safeParse(config);
    if (!parsed.success) {
      const problems = parsed.error.issues.map((i) => `${i.path.join('.') || 'root'}: ${i.message}`).join('; ');
      throw new StorageError('E_CONFIG_INVALID', `invalid ${source}: ${problems}`);
    }
    this.#keys = parsed.data.keys.map((k) => ({
      digest: createHash('sha256').update(k.key).digest(),
      principal: {
        identity: k.identity,
        prefixes: k.prefixes.map((p) => checkedPrefix(p.replaceAll('{userId}', k.identity), source)),
        permissions: new Set(k.permissions),
      },
    }));
    this.#publicRead = parsed.data.publicRead.map((p) => checkedPrefix(p, source));
    this.#source = source;
    const jwt = parsed.data.jwt;
    if (jwt) {
      // Check the prefixes once with a sample identity, so mistakes fail at start-up.
      for (const p of jwt.prefixes) checkedPrefix(p.replaceAll('{userId}', 'x'), source);
      const key: Promise<VerifyKey> = jwt.secret !== undefined ? Promise.resolve(new TextEncoder().encode(jwt.secret)) : importSPKI(jwt.publicKey as string, 'RS256');
      key.catch(() => undefined); // reported on first use, below
      this.#jwt = { key, algorithm: jwt.secret !== undefined ? 'HS256' : 'RS256', claim: jwt.claim, issuer: jwt.issuer, audience: jwt.audience, prefixes: jwt.prefixes, permissions: new Set(jwt.permissions) };
    }
  }

  /**
   * Reads the configuration from STOWAGE_AUTH_FILE (a JSON file) or STOWAGE_AUTH (inline
   * JSON); undefined when neither is set.
   */
  static fromEnv(env: Record<string, string | undefined>): Authenticator | undefined {
    const file = env.STOWAGE_AUTH_FILE;
    const inline = env.STOWAGE_AUTH;
    if (!file && !inline) return undefined;
    const source = file ? `STOWAGE_AUTH_FILE (${file})` : 'STOWAGE_AUTH';
    let json: unknown;
    try {
      json = JSON.parse(file ? readFileSync(file, 'utf8') : (inline as string));
    } catch (err) {
      throw new StorageError('E_CONFIG_INVALID', `invalid ${source}: ${(err as Error).message}`);
    }
    return new Authenticator(json as AuthConfig, source);
  }

  /**
   * The principal of an `Authorization: Bearer` header: a JWT when JWTs are configured
   * and the token has their shape, an API key otherwise. Throws UnauthenticatedError
   * when missing, unknown, expired or badly signed.
   */
  async authenticate(header: string | undefined): Promise<Principal> {
    const token = /^Bearer\s+(\S+)$/i.exec(header ?? '')?.[1];
    if (!token) throw new UnauthenticatedError('an API key is required: send Authorization: Bearer <key>');
    if (this.#jwt && /^[\w-]+\.[\w-]+\.[\w-]+$/.test(token)) return this.#fromJwt(token, this.#jwt);
    const digest = createHash('sha256').update(token).digest();
    // Compare against every key so timing does not reveal which prefix matched.
    let found: Principal | undefined;
    for (const k of this.#keys) if (timingSafeEqual(k.digest, digest)) found = k.principal;
    if (!found) throw new UnauthenticatedError('the API key is not valid');
    return found;
  }

  async #fromJwt(token: string, jwt: JwtVerifier): Promise<Principal> {
    let key: VerifyKey;
    try {
      key = await jwt.key;
    } catch (err) {
      throw new StorageError('E_CONFIG_INVALID', `invalid ${this.#source}: jwt.publicKey is not an SPKI PEM RSA key: ${(err as Error).message}`);
    }
    let payload: JWTPayload;
    try {
      ({ payload } = await jwtVerify(token, key, { algorithms: [jwt.algorithm], issuer: jwt.issuer, audience: jwt.audience }));
    } catch (err) {
      throw new UnauthenticatedError(`the token was refused: ${(err as Error).message}`);
    }
    const identity = payload[jwt.claim];
    if (typeof identity !== 'string' && typeof identity !== 'number') throw new UnauthenticatedError(`the token has no "${jwt.claim}" claim`);
    const id = String(identity);
    if (!isSafeIdentity(id)) throw new UnauthenticatedError(`the token's "${jwt.claim}" claim is not a usable identity`);
    return { identity: id, prefixes: jwt.prefixes.map((p) => checkedPrefix(p.replaceAll('{userId}', id), this.#source)), permissions: jwt.permissions };
  }

  /** True when anonymous reads of `key` are allowed. */
  isPublic(key: string): boolean {
    return this.#publicRead.some((p) => key.startsWith(p));
  }
}

function checkedPrefix(prefix: string, source: string): string {
  try {
    return normalizePrefix(prefix);
  } catch (err) {
    throw new StorageError('E_CONFIG_INVALID', `invalid ${source}: prefix ${JSON.stringify(prefix)}: ${(err as Error).message}`);
  }
}

/** Throws E_ACCESS_DENIED unless the principal has `permission` for `key` (or for every key under a listing prefix). */
export function authorize(principal: Principal, permission: Permission, key: string): void {
  if (!principal.permissions.has(permission)) {
    throw new StorageError('E_ACCESS_DENIED', `${principal.identity} lacks the ${permission} permission`, { key });
  }
  if (!principal.prefixes.some((p) => key.startsWith(p))) {
    throw new StorageError('E_ACCESS_DENIED', `${JSON.stringify(key)} is outside what ${principal.identity} may access`, { key });
  }
}
