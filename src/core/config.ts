/**
 * Configuration from environment variables, parsed by one schema. A bad value fails
 * at start with E_CONFIG_INVALID naming the variable and what is allowed.
 */
import { z } from 'zod';
import { StorageError } from './errors.js';
import { MIN_SECRET_LENGTH } from './signing.js';

/** The backends selectable by STORAGE_BACKEND. */
export const BACKENDS = ['local', 'memory'] as const;

// Empty variables (`FOO=` in a .env file) mean "not set".
const optional = <T extends z.ZodType>(schema: T) => z.preprocess((v) => (v === '' ? undefined : v), schema.optional());
const flag = z.enum(['true', 'false', '1', '0', 'yes', 'no'], { error: 'must be true or false' }).transform((v) => ['true', '1', 'yes'].includes(v));

const envSchema = z.object({
  STORAGE_BACKEND: optional(z.enum(BACKENDS, { error: `must be one of: ${BACKENDS.join(', ')}` })).default('local'),
  STORAGE_LOCAL_PATH: optional(z.string()).default('./uploads'),
  STORAGE_LOCAL_FSYNC: optional(flag).default(true),
  STORAGE_PUBLIC_URL: optional(z.url({ protocol: /^https?$/, error: 'must be an http:// or https:// URL' })),
  STORAGE_SIGNING_SECRET: optional(z.string().min(MIN_SECRET_LENGTH, { error: `must be at least ${MIN_SECRET_LENGTH} characters` })),
});

/** The storage settings read from the environment. */
export interface StorageConfig {
  backend: (typeof BACKENDS)[number];
  local: { path: string; fsync: boolean };
  publicUrl?: string;
  signingSecret?: string;
}

/** Parses and validates the storage variables of `env`. */
export function parseStorageEnv(env: Record<string, string | undefined> = process.env): StorageConfig {
  const result = envSchema.safeParse(env);
  if (!result.success) {
    const problems = result.error.issues.map((issue) => {
      const name = String(issue.path[0] ?? 'environment');
      const got = env[name];
      return `${name} ${issue.message}${got === undefined ? '' : ` (got ${JSON.stringify(name.includes('SECRET') ? '***' : got)})`}`;
    });
    throw new StorageError('E_CONFIG_INVALID', `invalid storage configuration: ${problems.join('; ')}`, {
      details: { variables: result.error.issues.map((i) => String(i.path[0])) },
    });
  }
  const v = result.data;
  return {
    backend: v.STORAGE_BACKEND,
    local: { path: v.STORAGE_LOCAL_PATH, fsync: v.STORAGE_LOCAL_FSYNC },
    publicUrl: v.STORAGE_PUBLIC_URL,
    signingSecret: v.STORAGE_SIGNING_SECRET,
  };
}
