/**
 * Configuration from environment variables, parsed by one schema. A bad value fails
 * at start with E_CONFIG_INVALID naming the variable and what is allowed.
 */
import type * as Zod from 'zod';
import type { z } from 'zod';
import type { ImagesOptions } from '../images/options.js';
import { parseVariants } from '../images/variants.js';
import { StorageError } from './errors.js';
import { lazyModule, lazyValue } from './lazy.js';
import { MIN_SECRET_LENGTH } from './signing.js';

/** The backends selectable by STORAGE_BACKEND. */
export const BACKENDS = ['local', 'memory', 's3'] as const;

/** zod, required on the first parse: a program that never reads its environment through Stowage never loads it. */
const zod = lazyModule<typeof Zod>('zod', 'reading the storage environment');

/** What every boolean setting accepts, in any case; one list, so every variable agrees. */
const BOOLEAN_WORDS: Record<string, boolean> = { true: true, false: false, 1: true, 0: false, yes: true, no: false, on: true, off: false };
/** The one message for a value that is not a boolean. */
const BOOLEAN_HELP = 'must be true/false, 1/0, yes/no or on/off';

/** The boolean a setting's text stands for (`true/false`, `1/0`, `yes/no`, `on/off`, any case), or undefined. */
export function parseBoolean(text: string): boolean | undefined {
  return BOOLEAN_WORDS[text.trim().toLowerCase()];
}

/**
 * A boolean environment variable outside the storage schema (the service's own
 * settings): `fallback` when unset or empty, E_CONFIG_INVALID naming it when not a boolean.
 */
export function booleanVariable(env: Record<string, string | undefined>, name: string, fallback: boolean): boolean {
  const text = env[name];
  if (text === undefined || text === '') return fallback;
  const value = parseBoolean(text);
  if (value === undefined) throw new StorageError('E_CONFIG_INVALID', `invalid configuration: ${name} ${BOOLEAN_HELP} (got ${JSON.stringify(text)})`, { details: { variables: [name] } });
  return value;
}

/** The schema of the storage variables, built on first use. */
function buildEnvSchema() {
  const { z } = zod();
  // Empty variables (`FOO=` in a .env file) mean "not set".
  const optional = <T extends z.ZodType>(schema: T) => z.preprocess((v) => (v === '' ? undefined : v), schema.optional());
  const flag = z.string().transform((text, ctx) => {
    const value = parseBoolean(text);
    if (value === undefined) ctx.addIssue({ code: 'custom', message: BOOLEAN_HELP });
    return value ?? false;
  });
  const httpUrl = z.url({ protocol: /^https?$/, error: 'must be an http:// or https:// URL' });
  const count = z.coerce.number({ error: 'must be a number' }).int({ error: 'must be a whole number' }).positive({ error: 'must be positive' });

  return z.object({
    STORAGE_URL: optional(z.string()),
    STORAGE_BACKEND: optional(z.enum(BACKENDS, { error: `must be one of: ${BACKENDS.join(', ')}` })),
    STORAGE_LOCAL_PATH: optional(z.string()),
    STORAGE_LOCAL_FSYNC: optional(flag).default(true),
    STORAGE_FALLBACK_URL: optional(z.string()),
    STORAGE_FALLBACK_COPY_ON_READ: optional(flag).default(false),
    STORAGE_LOCAL_READ_IO: optional(z.enum(['sync', 'async'], { error: 'must be sync or async' })).default('sync'),
    STORAGE_LOCAL_FOLLOW_SYMLINKS: optional(flag),
    STORAGE_LOCAL_CACHE_MB: optional(z.coerce.number({ error: 'must be a number' }).int({ error: 'must be a whole number of MiB' }).min(0, { error: 'must be 0 (off) or more' })),
    STORAGE_PUBLIC_URL: optional(httpUrl),
    STORAGE_PUBLIC_BASE_URL: optional(httpUrl),
    STORAGE_SIGNING_SECRET: optional(z.string().min(MIN_SECRET_LENGTH, { error: `must be at least ${MIN_SECRET_LENGTH} characters` })),
    STORAGE_S3_BUCKET: optional(z.string()),
    STORAGE_S3_REGION: optional(z.string()),
    STORAGE_S3_ENDPOINT_URL: optional(httpUrl),
    STORAGE_S3_ACCESS_KEY: optional(z.string()),
    STORAGE_S3_SECRET_KEY: optional(z.string()),
    STORAGE_S3_PREFIX: optional(z.string()),
    STORAGE_S3_PUBLIC_URL: optional(httpUrl),
    STORAGE_S3_PROVIDER: optional(z.string()),
    STORAGE_S3_FORCE_PATH_STYLE: optional(flag),
    STORAGE_S3_ACCOUNT_ID: optional(z.string()),
    STORAGE_S3_MAX_SOCKETS: optional(count),
    STOWAGE_OUTBOX_DIR: optional(z.string()),
    STOWAGE_QUOTAS: optional(z.string()),
    STOWAGE_QUOTA_DIR: optional(z.string()),
    STOWAGE_QUOTA_REDIS_URL: optional(z.url({ protocol: /^rediss?$/, error: 'must be a redis:// or rediss:// URL' })),
    STOWAGE_QUOTA_FAIL_OPEN: optional(flag).default(false),
    STOWAGE_QUOTA_LEASE_SECONDS: optional(count),
    STOWAGE_IMAGES: optional(flag).default(true),
    STOWAGE_IMAGE_VARIANTS: optional(z.string()),
    STOWAGE_IMAGE_MAX_PIXELS: optional(count),
    STOWAGE_IMAGE_MAX_INPUT_BYTES: optional(count),
    STOWAGE_IMAGE_ALLOW_SVG: optional(flag),
    STOWAGE_IMAGE_CONCURRENCY: optional(count),
    STOWAGE_IMAGE_CACHE_MB: optional(z.coerce.number({ error: 'must be a number' }).int({ error: 'must be a whole number of MiB' }).min(0, { error: 'must be 0 (off) or more' })),
    STOWAGE_IMAGE_QUEUE: optional(z.coerce.number({ error: 'must be a number' }).int({ error: 'must be a whole number' }).min(0, { error: 'must be 0 or more' })),
    STOWAGE_OUTBOX_MAX_BYTES: optional(z.coerce.number({ error: 'must be a number of bytes' }).int({ error: 'must be a whole number of bytes' }).positive({ error: 'must be positive' }).max(Number.MAX_SAFE_INTEGER, { error: 'is too large' })),
  });
}

const envSchema = lazyValue(buildEnvSchema);

/** S3 settings read from the environment (checked in depth by the S3 driver). */
export interface S3Config {
  bucket?: string;
  region?: string;
  endpoint?: string;
  accessKeyId?: string;
  secretAccessKey?: string;
  prefix?: string;
  publicUrl?: string;
  provider?: string;
  forcePathStyle?: boolean;
  accountId?: string;
  maxSockets?: number;
}

/** The storage settings read from the environment. */
export interface StorageConfig {
  backend: (typeof BACKENDS)[number];
  /** Without `cacheBytes`, the fs driver's default (32 MiB with sync reads, off with async). */
  local: { path: string; fsync: boolean; readIo: 'sync' | 'async'; cacheBytes?: number; followSymlinks?: boolean };
  s3: S3Config;
  /** The HTTP service's base URL, for signed links (STORAGE_PUBLIC_URL). */
  publicUrl?: string;
  signingSecret?: string;
  /** Where objects are fetched publicly, for `publicUrl(key)` (STORAGE_PUBLIC_BASE_URL). */
  publicBaseUrl?: string;
  /** The secondary of a fallback storage (STORAGE_FALLBACK_URL), when set. */
  fallback?: { url: string; copyOnRead: boolean };
  /** The outbox (STOWAGE_OUTBOX_DIR, STOWAGE_OUTBOX_MAX_BYTES), when set: writes the backend cannot take now are queued there. */
  outbox?: { dir: string; maxBytes?: number };
  /**
   * Quotas (STOWAGE_QUOTAS, STOWAGE_QUOTA_DIR, STOWAGE_QUOTA_REDIS_URL, STOWAGE_QUOTA_FAIL_OPEN),
   * when set; the rules' JSON is checked where the quota layer is built (`parseQuotaRules`).
   */
  quotas?: { rulesJson: string; dir?: string; redisUrl?: string; failOpen: boolean; leaseMs?: number };
  /**
   * Image variants (STOWAGE_IMAGE_VARIANTS as JSON, STOWAGE_IMAGE_MAX_PIXELS, _MAX_INPUT_BYTES,
   * _ALLOW_SVG, _CONCURRENCY, _QUEUE, _CACHE_MB); false with STOWAGE_IMAGES=false. The variants' JSON is
   * checked where the storage is made (`resolveImages`).
   */
  images: ImagesOptions | false;
}

/** Variables whose values are never echoed (STORAGE_URL may carry credentials). */
const SECRET_VARIABLES = /SECRET|ACCESS_KEY|^STORAGE_URL$|^STORAGE_FALLBACK_URL$|REDIS_URL$/;

function configError(message: string, variables: string[]): StorageError {
  return new StorageError('E_CONFIG_INVALID', `invalid storage configuration: ${message}`, { details: { variables } });
}

/**
 * Parses a storage URL: `local:./uploads`, `memory:`, `s3://bucket/prefix` (endpoint and
 * keys from elsewhere) or `s3://KEY:SECRET@host:port/bucket/prefix?region=...` (`s3+http://`
 * for a plain-HTTP endpoint). With credentials or a port the host is the endpoint;
 * otherwise it is the bucket. Query: region, provider, pathStyle, publicUrl.
 */
export function parseStorageUrl(text: string, variable = 'STORAGE_URL'): Pick<StorageConfig, 'backend'> & { localPath?: string; s3?: S3Config } {
  if (text === 'memory:' || text === 'memory') return { backend: 'memory' };
  if (text.startsWith('local:')) {
    const path = text.slice('local:'.length);
    if (path === '') throw configError(`${variable} "local:" needs a folder, e.g. local:./uploads`, [variable]);
    return { backend: 'local', localPath: path };
  }
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw configError(`${variable} must look like local:./uploads, memory: or s3://bucket/prefix`, [variable]);
  }
  if (url.protocol !== 's3:' && url.protocol !== 's3+http:' && url.protocol !== 's3+https:') {
    throw configError(`${variable} has the unknown scheme "${url.protocol}"; use local:, memory: or s3://`, [variable]);
  }
  const segments = decodeURIComponent(url.pathname).split('/').filter(Boolean);
  const hostIsEndpoint = url.username !== '' || url.port !== '' || url.protocol !== 's3:';
  const s3: S3Config = {};
  if (hostIsEndpoint) {
    s3.endpoint = `${url.protocol === 's3+http:' ? 'http' : 'https'}://${url.host}`;
    s3.bucket = segments.shift();
    if (url.username) s3.accessKeyId = decodeURIComponent(url.username);
    if (url.password) s3.secretAccessKey = decodeURIComponent(url.password);
  } else {
    s3.bucket = url.hostname;
  }
  if (segments.length > 0) s3.prefix = segments.join('/');
  const q = url.searchParams;
  if (q.has('region')) s3.region = q.get('region') ?? undefined;
  if (q.has('provider')) s3.provider = q.get('provider') ?? undefined;
  const pathStyle = q.get('pathStyle');
  if (pathStyle !== null) {
    s3.forcePathStyle = parseBoolean(pathStyle);
    if (s3.forcePathStyle === undefined) throw configError(`${variable}'s pathStyle ${BOOLEAN_HELP} (got ${JSON.stringify(pathStyle)})`, [variable]);
  }
  if (q.has('publicUrl')) s3.publicUrl = q.get('publicUrl') ?? undefined;
  return { backend: 's3', s3 };
}

/** Parses and validates the storage variables of `env`. */
export function parseStorageEnv(env: Record<string, string | undefined> = process.env): StorageConfig {
  const result = envSchema().safeParse(env);
  if (!result.success) {
    const problems = result.error.issues.map((issue) => {
      const name = String(issue.path[0] ?? 'environment');
      const got = env[name];
      return `${name} ${issue.message}${got === undefined ? '' : ` (got ${JSON.stringify(SECRET_VARIABLES.test(name) ? '***' : got)})`}`;
    });
    throw configError(problems.join('; '), result.error.issues.map((i) => String(i.path[0])));
  }
  const v = result.data;
  const fromUrl = v.STORAGE_URL === undefined ? undefined : parseStorageUrl(v.STORAGE_URL);
  if (fromUrl && v.STORAGE_BACKEND && v.STORAGE_BACKEND !== fromUrl.backend) {
    throw configError(`STORAGE_BACKEND is ${v.STORAGE_BACKEND} but STORAGE_URL names the ${fromUrl.backend} backend; set one of them`, ['STORAGE_BACKEND', 'STORAGE_URL']);
  }
  const backend = v.STORAGE_BACKEND ?? fromUrl?.backend ?? 'local';
  // Individual variables override what STORAGE_URL says.
  const s3: S3Config = { ...fromUrl?.s3 };
  const overrides: [keyof S3Config, unknown][] = [
    ['bucket', v.STORAGE_S3_BUCKET], ['region', v.STORAGE_S3_REGION], ['endpoint', v.STORAGE_S3_ENDPOINT_URL],
    ['accessKeyId', v.STORAGE_S3_ACCESS_KEY], ['secretAccessKey', v.STORAGE_S3_SECRET_KEY], ['prefix', v.STORAGE_S3_PREFIX],
    ['publicUrl', v.STORAGE_S3_PUBLIC_URL], ['provider', v.STORAGE_S3_PROVIDER], ['forcePathStyle', v.STORAGE_S3_FORCE_PATH_STYLE],
    ['accountId', v.STORAGE_S3_ACCOUNT_ID], ['maxSockets', v.STORAGE_S3_MAX_SOCKETS],
  ];
  for (const [field, value] of overrides) if (value !== undefined) Object.assign(s3, { [field]: value });
  if (v.STOWAGE_OUTBOX_MAX_BYTES !== undefined && v.STOWAGE_OUTBOX_DIR === undefined) throw configError('STOWAGE_OUTBOX_MAX_BYTES is set but STOWAGE_OUTBOX_DIR is not: set the outbox folder too', ['STOWAGE_OUTBOX_DIR']);
  for (const name of ['STOWAGE_QUOTA_DIR', 'STOWAGE_QUOTA_REDIS_URL', 'STOWAGE_QUOTA_FAIL_OPEN', 'STOWAGE_QUOTA_LEASE_SECONDS'] as const) {
    if (env[name] !== undefined && env[name] !== '' && v.STOWAGE_QUOTAS === undefined) throw configError(`${name} is set but STOWAGE_QUOTAS is not: set the quotas too, e.g. STOWAGE_QUOTAS='{"users/*/":{"maxBytes":1073741824}}'`, ['STOWAGE_QUOTAS']);
  }
  if (v.STOWAGE_QUOTA_DIR !== undefined && v.STOWAGE_QUOTA_REDIS_URL !== undefined) throw configError('STOWAGE_QUOTA_DIR and STOWAGE_QUOTA_REDIS_URL are both set: the counters live in one of them', ['STOWAGE_QUOTA_DIR', 'STOWAGE_QUOTA_REDIS_URL']);
  const quotas = v.STOWAGE_QUOTAS === undefined ? undefined : {
    rulesJson: v.STOWAGE_QUOTAS,
    ...(v.STOWAGE_QUOTA_DIR === undefined ? {} : { dir: v.STOWAGE_QUOTA_DIR }),
    ...(v.STOWAGE_QUOTA_REDIS_URL === undefined ? {} : { redisUrl: v.STOWAGE_QUOTA_REDIS_URL }),
    failOpen: v.STOWAGE_QUOTA_FAIL_OPEN,
    ...(v.STOWAGE_QUOTA_LEASE_SECONDS === undefined ? {} : { leaseMs: v.STOWAGE_QUOTA_LEASE_SECONDS * 1000 }),
  };
  const imageSettings: [keyof ImagesOptions, unknown][] = [
    ['variants', v.STOWAGE_IMAGE_VARIANTS], ['maxPixels', v.STOWAGE_IMAGE_MAX_PIXELS], ['maxInputBytes', v.STOWAGE_IMAGE_MAX_INPUT_BYTES],
    ['allowSvg', v.STOWAGE_IMAGE_ALLOW_SVG], ['concurrency', v.STOWAGE_IMAGE_CONCURRENCY], ['queue', v.STOWAGE_IMAGE_QUEUE],
    ['cacheBytes', v.STOWAGE_IMAGE_CACHE_MB === undefined ? undefined : v.STOWAGE_IMAGE_CACHE_MB * 1024 * 1024],
  ];
  // Checked here too, so that a mistake names the variable rather than the option.
  if (v.STOWAGE_IMAGE_VARIANTS !== undefined) parseVariants(v.STOWAGE_IMAGE_VARIANTS, 'STOWAGE_IMAGE_VARIANTS');
  const images: ImagesOptions | false = v.STOWAGE_IMAGES ? Object.fromEntries(imageSettings.filter(([, value]) => value !== undefined)) : false;
  if (backend === 's3' && !s3.bucket) throw configError('STORAGE_S3_BUCKET is required when STORAGE_BACKEND is s3 (or give STORAGE_URL=s3://bucket/prefix)', ['STORAGE_S3_BUCKET']);
  return {
    backend,
    local: {
      path: v.STORAGE_LOCAL_PATH ?? fromUrl?.localPath ?? './uploads',
      fsync: v.STORAGE_LOCAL_FSYNC,
      readIo: v.STORAGE_LOCAL_READ_IO,
      ...(v.STORAGE_LOCAL_FOLLOW_SYMLINKS === undefined ? {} : { followSymlinks: v.STORAGE_LOCAL_FOLLOW_SYMLINKS }),
      ...(v.STORAGE_LOCAL_CACHE_MB === undefined ? {} : { cacheBytes: v.STORAGE_LOCAL_CACHE_MB * 1024 * 1024 }),
    },
    s3,
    publicUrl: v.STORAGE_PUBLIC_URL,
    ...(v.STORAGE_PUBLIC_BASE_URL === undefined ? {} : { publicBaseUrl: v.STORAGE_PUBLIC_BASE_URL }),
    signingSecret: v.STORAGE_SIGNING_SECRET,
    ...(v.STORAGE_FALLBACK_URL === undefined ? {} : { fallback: { url: v.STORAGE_FALLBACK_URL, copyOnRead: v.STORAGE_FALLBACK_COPY_ON_READ } }),
    ...(quotas === undefined ? {} : { quotas }),
    images,
    ...(v.STOWAGE_OUTBOX_DIR === undefined ? {} : { outbox: { dir: v.STOWAGE_OUTBOX_DIR, ...(v.STOWAGE_OUTBOX_MAX_BYTES === undefined ? {} : { maxBytes: v.STOWAGE_OUTBOX_MAX_BYTES }) } }),
  };
}
