/**
 * Bearer API keys. Each key has an identity (e.g. a user id), the key prefixes it may
 * touch (`{userId}` stands for its identity) and its permissions. Missing or unknown
 * keys get 401; a key outside its prefixes or permissions gets 403, so one user can
 * never read, list, overwrite or presign another's objects. Public-read prefixes allow
 * anonymous GET. Keys are compared by SHA-256 digest, in constant time.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { StorageError } from '../core/errors.js';
import { normalizePrefix } from '../core/keys.js';

/** What a key may do. */
export const PERMISSIONS = ['read', 'write', 'delete', 'list', 'presign'] as const;
/** One permission. */
export type Permission = (typeof PERMISSIONS)[number];

const keySchema = z.object({
  key: z.string().min(16, { error: 'API keys must be at least 16 characters' }),
  // eslint-disable-next-line no-control-regex
  identity: z.string().min(1).regex(/^[^/\\\u0000-\u001f]+$/, { error: 'identity must be one key segment (no "/", "\\" or control characters)' }),
  prefixes: z.array(z.string()).min(1),
  permissions: z.array(z.enum(PERMISSIONS)).min(1),
});
const authSchema = z.object({ keys: z.array(keySchema), publicRead: z.array(z.string()).default([]) });

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

/** Checks requests against the configured keys. */
export class Authenticator {
  readonly #keys: { digest: Buffer; principal: Principal }[];
  readonly #publicRead: string[];

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

  /** The principal of an `Authorization: Bearer` header; throws UnauthenticatedError when missing or unknown. */
  authenticate(header: string | undefined): Principal {
    const token = /^Bearer\s+(\S+)$/i.exec(header ?? '')?.[1];
    if (!token) throw new UnauthenticatedError('an API key is required: send Authorization: Bearer <key>');
    const digest = createHash('sha256').update(token).digest();
    // Compare against every key so timing does not reveal which prefix matched.
    let found: Principal | undefined;
    for (const k of this.#keys) if (timingSafeEqual(k.digest, digest)) found = k.principal;
    if (!found) throw new UnauthenticatedError('the API key is not valid');
    return found;
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
