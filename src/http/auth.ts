/**
 * Bearer API keys and JWTs. Each key has an identity (e.g. a user id), the key prefixes it
 * may touch (`{userId}` stands for its identity) and its permissions; a verified JWT
 * (HS256 or RS256, with an `exp` unless `requireExp: false`) takes its identity from a
 * claim and the prefixes and permissions configured for JWTs. An identity must already
 * be one key segment in Unicode NFC form: identities that differ only in their Unicode
 * form would otherwise fold into one user's folder. Missing or unknown keys, and tokens
 * with an unusable identity, get 401; a key outside its prefixes or permissions gets
 * 403, so one user can never read, list, overwrite or presign another's objects.
 * Public-read prefixes allow anonymous GET; `/metrics` and `/docs` need their own
 * permission unless listed in `public`. Keys are compared by SHA-256 digest, in
 * constant time.
 */
import type * as Zod from 'zod';
import { createHash, timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { CryptoKey, JWTPayload } from 'jose';
import { StorageError } from '../core/errors.js';
import { normalizePrefix, segmentProblem } from '../core/keys.js';
import { lazyModule, lazyValue } from '../core/lazy.js';
import { HttpError } from './catalogue.js';

/** The service's own endpoints that need a permission of their own (or `public`) once auth is configured. */
export const SERVICE_ENDPOINTS = ['metrics', 'docs'] as const;
/** One service endpoint: `metrics` is `/metrics`, `docs` is `/docs` and `/openapi.json`. */
export type ServiceEndpoint = (typeof SERVICE_ENDPOINTS)[number];
/** Permissions on objects; each needs the key's prefixes. */
const OBJECT_PERMISSIONS = ['read', 'write', 'delete', 'list', 'presign'] as const;
/** What a key may do: the object permissions, and reading a service endpoint. */
export const PERMISSIONS = [...OBJECT_PERMISSIONS, ...SERVICE_ENDPOINTS] as const;
/** One permission. */
export type Permission = (typeof PERMISSIONS)[number];

/**
 * Why `id` cannot stand in for `{userId}`, or undefined when it can: it must be one key
 * segment by the key rules, and already in NFC, so two spellings of one name (`jos\u00e9`,
 * `jose\u0301`) are two identities, never one folder.
 */
function identityProblem(id: string): string | undefined {
  return segmentProblem(id) ?? (id.normalize('NFC') === id ? undefined : 'it is not in Unicode NFC form');
}

/** zod, required when the first configuration is checked; jose, imported when the first JWT is verified. */
const zod = lazyModule<typeof Zod>('zod', 'checking the auth configuration');
const jose = lazyValue(() => import('jose'));

/** The schema of an auth configuration, built on first use. */
function buildAuthSchema() {
  const { z } = zod();
  const keySchema = z
    .object({
      key: z.string().min(16, { error: 'API keys must be at least 16 characters' }),
      identity: z.string().superRefine((id, ctx) => {
        const problem = identityProblem(id);
        if (problem) ctx.addIssue({ code: 'custom', message: `the identity must be one key segment in Unicode NFC form: ${problem}` });
      }),
      prefixes: z.array(z.string()).default([]),
      permissions: z.array(z.enum(PERMISSIONS)).min(1),
    })
    .refine((k) => k.prefixes.length > 0 || !k.permissions.some((p) => (OBJECT_PERMISSIONS as readonly string[]).includes(p)), {
      error: 'a key with read, write, delete, list or presign needs at least one prefix',
      path: ['prefixes'],
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
      /** Refuse tokens without an `exp` claim (default true): such a token would never expire. */
      requireExp: z.boolean().default(true),
      prefixes: z.array(z.string()).min(1),
      permissions: z.array(z.enum(PERMISSIONS)).min(1),
    })
    .refine((j) => (j.secret === undefined) !== (j.publicKey === undefined), { error: 'give exactly one of secret (HS256) or publicKey (RS256)' });
  return z.object({
    keys: z.array(keySchema).default([]),
    publicRead: z.array(z.string()).default([]),
    /** Service endpoints anyone may read without a key. */
    public: z.array(z.enum(SERVICE_ENDPOINTS)).default([]),
    jwt: jwtSchema.optional(),
  });
}

const authSchema = lazyValue(buildAuthSchema);

/** The auth configuration, as written in STOWAGE_AUTH_FILE or STOWAGE_AUTH. */
export type AuthConfig = Zod.input<ReturnType<typeof buildAuthSchema>>;

/** Who is calling, and what they may do. */
export interface Principal {
  identity: string;
  prefixes: string[];
  permissions: ReadonlySet<Permission>;
}

/** Thrown for requests without valid credentials: 401 E_UNAUTHENTICATED, with `WWW-Authenticate: Bearer`. */
export class UnauthenticatedError extends HttpError {
  constructor(message: string) {
    super('E_UNAUTHENTICATED', message);
  }
}

/** A key jwtVerify accepts: an imported RSA public key or an HMAC secret. */
type VerifyKey = CryptoKey | Uint8Array;

/** How bearer JWTs are verified and turned into principals. */
interface JwtVerifier {
  key: Promise<VerifyKey>;
  algorithm: 'HS256' | 'RS256';
  claim: string;
  issuer?: string;
  audience?: string;
  requireExp: boolean;
  prefixes: string[];
  permissions: ReadonlySet<Permission>;
}

/** Checks requests against the configured keys and, optionally, JWTs. */
export class Authenticator {
  readonly #keys: { digest: Buffer; principal: Principal }[];
  readonly #publicRead: string[];
  readonly #publicEndpoints: ReadonlySet<ServiceEndpoint>;
  readonly #jwt: JwtVerifier | undefined;
  readonly #source: string;

  constructor(config: AuthConfig, source = 'auth configuration') {
    const parsed = authSchema().safeParse(config);
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
    this.#publicEndpoints = new Set(parsed.data.public);
    this.#source = source;
    const jwt = parsed.data.jwt;
    if (jwt) {
      // Check the prefixes once with a sample identity, so mistakes fail at start-up.
      for (const p of jwt.prefixes) checkedPrefix(p.replaceAll('{userId}', 'x'), source);
      const key: Promise<VerifyKey> = jwt.secret !== undefined ? Promise.resolve(new TextEncoder().encode(jwt.secret)) : jose().then((j) => j.importSPKI(jwt.publicKey as string, 'RS256'));
      key.catch(() => undefined); // reported on first use, below
      this.#jwt = { key, algorithm: jwt.secret !== undefined ? 'HS256' : 'RS256', claim: jwt.claim, issuer: jwt.issuer, audience: jwt.audience, requireExp: jwt.requireExp, prefixes: jwt.prefixes, permissions: new Set(jwt.permissions) };
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
      ({ payload } = await (await jose()).jwtVerify(token, key, { algorithms: [jwt.algorithm], issuer: jwt.issuer, audience: jwt.audience, requiredClaims: jwt.requireExp ? ['exp'] : [] }));
    } catch (err) {
      throw new UnauthenticatedError(`the token was refused: ${(err as Error).message}`);
    }
    const identity = payload[jwt.claim];
    if (typeof identity !== 'string' && typeof identity !== 'number') throw new UnauthenticatedError(`the token has no "${jwt.claim}" claim`);
    const id = String(identity);
    // The caller chose this value: a bad one is a bad token (401), never a configuration error.
    const problem = identityProblem(id);
    if (problem) throw new UnauthenticatedError(`the token's "${jwt.claim}" claim is not a usable identity: ${problem}`);
    let prefixes: string[];
    try {
      prefixes = jwt.prefixes.map((p) => normalizePrefix(p.replaceAll('{userId}', id)));
    } catch (err) {
      throw new UnauthenticatedError(`the token's "${jwt.claim}" claim does not fit the configured prefixes: ${(err as Error).message}`);
    }
    return { identity: id, prefixes, permissions: jwt.permissions };
  }

  /**
   * Allows a request to a service endpoint: anyone when the configuration lists it in
   * `public`, else a key with the endpoint's permission. Throws UnauthenticatedError
   * (401) or E_ACCESS_DENIED (403).
   */
  async authorizeEndpoint(endpoint: ServiceEndpoint, header: string | undefined): Promise<void> {
    if (this.#publicEndpoints.has(endpoint)) return;
    const principal = await this.authenticate(header);
    if (!principal.permissions.has(endpoint)) {
      throw new StorageError('E_ACCESS_DENIED', `${principal.identity} lacks the ${endpoint} permission`, { publicMessage: `This needs a key with the ${endpoint} permission.` });
    }
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
