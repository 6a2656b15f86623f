/**
 * Factories: `createStorage` picks a driver by name (or takes a Driver instance), and
 * `createStorageFromEnv` does the same from environment variables. They sit above
 * core and drivers, so core never depends on a particular driver.
 */
import { parseStorageEnv, type S3Config } from './core/config.js';
import { StorageError } from './core/errors.js';
import { Storage, type StorageOptions } from './core/storage.js';
import type { Driver } from './core/types.js';
import { FsDriver, type FsDriverOptions } from './drivers/fs/driver.js';
import { MemoryDriver } from './drivers/memory/driver.js';
import { S3Driver } from './drivers/s3/driver.js';
import type { S3DriverOptions } from './drivers/s3/options.js';
import type { ProviderName } from './drivers/s3/providers.js';

/** Options of `createStorage`: a driver name with its options, or your own Driver instance. */
export type CreateStorageOptions =
  | ({ driver: 'fs' | 'local' } & FsDriverOptions & StorageOptions)
  | ({ driver: 'memory' } & StorageOptions)
  | ({ driver: 's3' } & S3DriverOptions & StorageOptions)
  | ({ driver: Driver } & StorageOptions);

/**
 * Creates a Storage. `createStorage({ driver: 'fs', root: './uploads' })` stores files
 * on disk (the default backend); `createStorage({ driver: 's3', bucket, endpoint, ... })`
 * uses any S3-compatible service; `createStorage({ driver: 'memory' })` keeps objects in
 * this process, for tests. `baseUrl` and `signingSecret` enable signed URLs on fs and memory.
 */
export function createStorage(options: CreateStorageOptions = { driver: 'fs' }): Storage {
  const { driver, baseUrl, signingSecret } = options;
  const storageOptions: StorageOptions = { baseUrl, signingSecret };
  if (typeof driver === 'object' && driver !== null) return new Storage(driver, storageOptions);
  switch (driver) {
    case 'fs':
    case 'local': {
      const { root, fsync, readIo } = options as FsDriverOptions;
      return new Storage(new FsDriver({ root, fsync, readIo }), storageOptions);
    }
    case 'memory':
      return new Storage(new MemoryDriver(), storageOptions);
    case 's3':
      return new Storage(new S3Driver(options), storageOptions);
    default:
      throw new StorageError('E_CONFIG_INVALID', `unknown driver ${JSON.stringify(driver)}: use "fs", "s3", "memory" or a Driver instance`);
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
 * STORAGE_LOCAL_*, STORAGE_S3_*, STORAGE_PUBLIC_URL, STORAGE_SIGNING_SECRET). Throws
 * E_CONFIG_INVALID naming the variable when a value is wrong.
 */
export function createStorageFromEnv(env: Record<string, string | undefined> = process.env): Storage {
  const config = parseStorageEnv(env);
  const common = { baseUrl: config.publicUrl, signingSecret: config.signingSecret };
  switch (config.backend) {
    case 'memory':
      return createStorage({ driver: 'memory', ...common });
    case 's3':
      return s3FromEnv(config.s3, common);
    default:
      return createStorage({ driver: 'fs', root: config.local.path, fsync: config.local.fsync, readIo: config.local.readIo, ...common });
  }
}
