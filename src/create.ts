/**
 * Factories: `createStorage` picks a driver by name (or takes a Driver instance), and
 * `createStorageFromEnv` does the same from environment variables. They sit above
 * core and drivers, so core never depends on a particular driver.
 */
import { parseStorageEnv, parseStorageUrl, type S3Config, type StorageConfig } from './core/config.js';
import { StorageError } from './core/errors.js';
import { Storage, type StorageOptions } from './core/storage.js';
import { checkDriver, type Driver } from './core/contract.js';
import { FallbackDriver } from './drivers/fallback/driver.js';
import { FsDriver } from './drivers/fs/driver.js';
import type { FsDriverOptions } from './drivers/fs/options.js';
import { MemoryDriver } from './drivers/memory/driver.js';
import { S3Driver } from './drivers/s3/driver.js';
import type { S3DriverOptions } from './drivers/s3/options.js';
import type { ProviderName } from './drivers/s3/providers.js';
import type { OutboxOptions } from './layers/outbox/control.js';
import { withOutbox } from './layers/outbox/layer.js';
import { parseQuotaRules } from './layers/quota/rules.js';
import { quotaLayerFor, type QuotaSetup } from './layers/quota/setup.js';
import type { WriteResult } from './core/types.js';

/** Options of `createStorage`: a driver name with its options, or your own Driver instance. */
export type CreateStorageOptions =
  | ({ driver: 'fs' | 'local' } & FsDriverOptions & StorageOptions)
  | ({ driver: 'memory' } & StorageOptions)
  | ({ driver: 's3' } & S3DriverOptions & StorageOptions)
  | ({ driver: 'fallback' } & FallbackStorageOptions & StorageOptions)
  | ({ driver: Driver } & StorageOptions);

/** Options of the fallback storage: two storages (or drivers) used as one. */
export interface FallbackStorageOptions {
  /** The new backend: writes go here, reads look here first. */
  primary: Storage | Driver;
  /** The old backend: reads the primary misses are served from here. */
  secondary: Storage | Driver;
  /** Copy an object found only in the secondary to the primary when it is read (default false). */
  copyOnRead?: boolean;
}

/**
 * With `outbox: { dir, maxBytes }`, writes the backend cannot take now (it is down) are
 * spooled in `dir` and delivered later; they resolve a `QueuedWrite`, so such a storage
 * is typed `Storage<WriteResult>` (see the README's Outbox section).
 */
export interface OutboxOption {
  outbox: OutboxOptions;
}

/**
 * With `quotas: { rules }`, every write is checked against exact quotas per prefix before a
 * byte is stored (see the README's Quotas section).
 */
export interface QuotaOption {
  quotas?: QuotaSetup;
}

/**
 * Creates a Storage. `createStorage({ driver: 'fs', root: './uploads' })` stores files
 * on disk (the default backend); `createStorage({ driver: 's3', bucket, endpoint, ... })`
 * uses any S3-compatible service; `createStorage({ driver: 'memory' })` keeps objects in
 * this process, for tests; `createStorage({ driver: 'fallback', primary, secondary })`
 * writes to the primary and reads from it, falling back to the secondary (for a gradual
 * migration). `baseUrl` and `signingSecret` enable signed URLs on fs, memory and fallback.
 */
export function createStorage(options: CreateStorageOptions & OutboxOption & QuotaOption): Storage<WriteResult>;
export function createStorage(options?: CreateStorageOptions & { outbox?: undefined } & QuotaOption): Storage;
export function createStorage(options: CreateStorageOptions & Partial<OutboxOption> & QuotaOption = { driver: 'fs' }): Storage<WriteResult> {
  let storage: Storage<WriteResult> = createBackend(options);
  const { outbox, quotas } = options;
  if (outbox !== undefined) storage = storage.withDriver((driver) => withOutbox(driver, outbox));
  // Above the outbox (the README's order): a write the outbox queues is counted when queued.
  const fsRoot = options.driver === 'fs' || options.driver === 'local' ? (options as FsDriverOptions).root ?? './uploads' : undefined;
  return quotas === undefined ? storage : storage.withDriver((driver) => quotaLayerFor(driver, quotas, fsRoot));
}

function createBackend(options: CreateStorageOptions): Storage {
  const { driver, baseUrl, signingSecret, publicBaseUrl, images } = options;
  const storageOptions: StorageOptions = { baseUrl, signingSecret, publicBaseUrl, images };
  if (typeof driver === 'object' && driver !== null) return new Storage(driver, storageOptions);
  switch (driver) {
    case 'fs':
    case 'local':
      // The driver reads only its own options, like the S3 driver below.
      return new Storage(new FsDriver(options), storageOptions);
    case 'memory':
      return new Storage(new MemoryDriver(), storageOptions);
    case 's3':
      return new Storage(new S3Driver(options), storageOptions);
    case 'fallback': {
      const { primary, secondary, copyOnRead } = options as FallbackStorageOptions;
      const driverOf = (s: Storage | Driver, name: string): Driver => (s instanceof Storage ? s.driver : checkDriver(s, `the fallback storage's ${name}`));
      return new Storage(new FallbackDriver({ primary: driverOf(primary, 'primary'), secondary: driverOf(secondary, 'secondary'), copyOnRead }), storageOptions);
    }
    default:
      throw new StorageError('E_CONFIG_INVALID', `unknown driver ${JSON.stringify(driver)}: use "fs", "s3", "memory", "fallback" or a Driver instance`);
  }
}

/** Which variable sets which S3 option, so errors can name the variable. */
const S3_VARIABLES: Record<string, string> = {
  bucket: 'STORAGE_S3_BUCKET',
  region: 'STORAGE_S3_REGION',
  endpoint: 'STORAGE_S3_ENDPOINT_URL',
  'accessKeyId/secretAccessKey': 'STORAGE_S3_ACCESS_KEY/STORAGE_S3_SECRET_KEY',
  prefix: 'STORAGE_S3_PREFIX',
  publicUrl: 'STORAGE_S3_PUBLIC_URL',
  provider: 'STORAGE_S3_PROVIDER',
  accountId: 'STORAGE_S3_ACCOUNT_ID',
  maxSockets: 'STORAGE_S3_MAX_SOCKETS',
};

function s3FromEnv(s3: S3Config, common: StorageOptions): Storage {
  try {
    return createStorage({ driver: 's3', ...(s3 as S3DriverOptions), provider: s3.provider as ProviderName | undefined, ...common });
  } catch (err) {
    const option = err instanceof StorageError ? /^S3 option (\S+)/.exec(err.message)?.[1] : undefined;
    const variable = option ? S3_VARIABLES[option] : undefined;
    if (err instanceof StorageError && variable) {
      throw new StorageError('E_CONFIG_INVALID', `${err.message} (set by ${variable} or STORAGE_URL)`, { cause: err, details: { variables: variable.split('/') } });
    }
    throw err;
  }
}

/**
 * Creates a Storage from environment variables (STORAGE_BACKEND or STORAGE_URL, then
 * STORAGE_LOCAL_*, STORAGE_S3_*, STORAGE_PUBLIC_URL, STORAGE_SIGNING_SECRET,
 * STORAGE_PUBLIC_BASE_URL). With
 * STOWAGE_IMAGES and STOWAGE_IMAGE_* (image variants, see `images`). With
 * STORAGE_FALLBACK_URL it is a fallback storage whose secondary is that location
 * (STORAGE_FALLBACK_COPY_ON_READ=true copies objects over as they are read). With
 * STOWAGE_OUTBOX_DIR (and STOWAGE_OUTBOX_MAX_BYTES) it has an outbox there; with
 * STOWAGE_QUOTAS, quotas (STOWAGE_QUOTA_DIR, STOWAGE_QUOTA_REDIS_URL,
 * STOWAGE_QUOTA_FAIL_OPEN; `setup` adds what the environment cannot say, such as
 * `onAlert` or `log`). Throws
 * E_CONFIG_INVALID naming the variable when a value is wrong.
 */
export function createStorageFromEnv(env: Record<string, string | undefined> = process.env, setup: Partial<QuotaSetup> = {}): Storage<WriteResult> {
  const config = parseStorageEnv(env);
  let storage: Storage<WriteResult> = storageFromEnv(config, env);
  const { outbox, quotas } = config;
  if (outbox !== undefined) storage = storage.withDriver((driver) => withOutbox(driver, outbox));
  const fsRoot = config.backend === 'local' && config.fallback === undefined ? config.local.path : undefined;
  if (quotas === undefined) return storage;
  const { rulesJson, ...where } = quotas;
  const rules = parseQuotaRules(rulesJson);
  return storage.withDriver((driver) => quotaLayerFor(driver, { rules, ...where, ...setup }, fsRoot));
}

/** The storage of the environment, without its outbox. */
function storageFromEnv(config: StorageConfig, env: Record<string, string | undefined>): Storage {
  const common = { baseUrl: config.publicUrl, signingSecret: config.signingSecret, publicBaseUrl: config.publicBaseUrl, images: config.images };
  const primary = storageFromConfig(config, common);
  if (config.fallback === undefined) return primary;
  const secondary = createStorageFromUrl(config.fallback.url, env, 'STORAGE_FALLBACK_URL');
  return createStorage({ driver: 'fallback', primary, secondary, copyOnRead: config.fallback.copyOnRead, ...common });
}

function storageFromConfig(config: StorageConfig, common: StorageOptions): Storage {
  switch (config.backend) {
    case 'memory':
      return createStorage({ driver: 'memory', ...common });
    case 's3':
      return s3FromEnv(config.s3, common);
    default: {
      const { path, fsync, readIo, cacheBytes, followSymlinks } = config.local;
      return createStorage({ driver: 'fs', root: path, fsync, readIo, cacheBytes, followSymlinks, ...common });
    }
  }
}

/**
 * Variables that say where the one storage of the environment is; a location URL
 * replaces them. The outbox belongs to that one storage too: a location never has one
 * (two storages on one outbox folder would contend for it).
 */
const LOCATION_VARIABLES = ['STORAGE_BACKEND', 'STORAGE_URL', 'STORAGE_LOCAL_PATH', 'STORAGE_S3_BUCKET', 'STORAGE_S3_PREFIX', 'STORAGE_FALLBACK_URL', 'STORAGE_FALLBACK_COPY_ON_READ', 'STOWAGE_OUTBOX_DIR', 'STOWAGE_OUTBOX_MAX_BYTES', 'STOWAGE_QUOTAS', 'STOWAGE_QUOTA_DIR', 'STOWAGE_QUOTA_REDIS_URL', 'STOWAGE_QUOTA_FAIL_OPEN', 'STOWAGE_QUOTA_LEASE_SECONDS'];
/** Variables that name an S3 endpoint and its keys; a URL that carries its own replaces them too. */
const ENDPOINT_VARIABLES = ['STORAGE_S3_ENDPOINT_URL', 'STORAGE_S3_ACCESS_KEY', 'STORAGE_S3_SECRET_KEY', 'STORAGE_S3_PROVIDER', 'STORAGE_S3_FORCE_PATH_STYLE'];

/**
 * Creates a Storage for one location URL (`local:./uploads`, `memory:`,
 * `s3://bucket/prefix`, `s3://KEY:SECRET@host:port/bucket/prefix`), as the CLI names
 * them. Other settings (S3 endpoint and keys, fsync, signing) come from `env`, except
 * that a URL with its own endpoint and keys uses those. Bad URLs are E_CONFIG_INVALID
 * naming `variable`.
 */
export function createStorageFromUrl(url: string, env: Record<string, string | undefined> = process.env, variable = 'location'): Storage {
  const { config, env: own } = storageConfigFromUrl(url, env, variable);
  return naming(variable, () => storageFromEnv(config, own));
}

/**
 * The configuration `createStorageFromUrl` makes its storage of, and the environment it
 * reads the rest from (the configured storage's own location variables left out): what
 * the CLI finds a location's lifecycle lock by, without opening it.
 */
export function storageConfigFromUrl(url: string, env: Record<string, string | undefined> = process.env, variable = 'location'): { config: StorageConfig; env: Record<string, string | undefined> } {
  const own = { ...env };
  for (const name of LOCATION_VARIABLES) delete own[name];
  const parsed = parseStorageUrl(url, variable);
  if (parsed.s3?.endpoint !== undefined) for (const name of ENDPOINT_VARIABLES) delete own[name];
  own.STORAGE_URL = url;
  return { config: naming(variable, () => parseStorageEnv(own)), env: own };
}

/** Runs `make`, its E_CONFIG_INVALID naming `variable` where it said STORAGE_URL. */
function naming<T>(variable: string, make: () => T): T {
  try {
    return make();
  } catch (err) {
    if (err instanceof StorageError && err.code === 'E_CONFIG_INVALID') throw new StorageError('E_CONFIG_INVALID', err.message.replaceAll('STORAGE_URL', variable), { cause: err });
    throw err;
  }
}
