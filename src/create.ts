/**
 * Factories: `createStorage` picks a driver by name (or takes a Driver instance), and
 * `createStorageFromEnv` does the same from environment variables. They sit above
 * core and drivers, so core never depends on a particular driver.
 */
import { parseStorageEnv } from './core/config.js';
import { StorageError } from './core/errors.js';
import { Storage, type StorageOptions } from './core/storage.js';
import type { Driver } from './core/types.js';
import { FsDriver, type FsDriverOptions } from './drivers/fs/driver.js';
import { MemoryDriver } from './drivers/memory/driver.js';

/** Options of `createStorage`: a driver name with its options, or your own Driver instance. */
export type CreateStorageOptions =
  | ({ driver: 'fs' | 'local' } & FsDriverOptions & StorageOptions)
  | ({ driver: 'memory' } & StorageOptions)
  | ({ driver: Driver } & StorageOptions);

/**
 * Creates a Storage. `createStorage({ driver: 'fs', root: './uploads' })` stores files
 * on disk (the default backend); `createStorage({ driver: 'memory' })` keeps them in
 * this process, for tests. `baseUrl` and `signingSecret` enable signed URLs.
 */
export function createStorage(options: CreateStorageOptions = { driver: 'fs' }): Storage {
  const { driver, baseUrl, signingSecret } = options;
  const storageOptions: StorageOptions = { baseUrl, signingSecret };
  if (typeof driver === 'object' && driver !== null) return new Storage(driver, storageOptions);
  switch (driver) {
    case 'fs':
    case 'local': {
      const { root, fsync } = options as FsDriverOptions;
      return new Storage(new FsDriver({ root, fsync }), storageOptions);
    }
    case 'memory':
      return new Storage(new MemoryDriver(), storageOptions);
    default:
      throw new StorageError('E_CONFIG_INVALID', `unknown driver ${JSON.stringify(driver)}: use "fs", "memory" or a Driver instance`);
  }
}

/**
 * Creates a Storage from environment variables (STORAGE_BACKEND, STORAGE_LOCAL_PATH,
 * STORAGE_PUBLIC_URL, STORAGE_SIGNING_SECRET, ...). Throws E_CONFIG_INVALID naming
 * the variable when a value is wrong.
 */
export function createStorageFromEnv(env: Record<string, string | undefined> = process.env): Storage {
  const config = parseStorageEnv(env);
  const common = { baseUrl: config.publicUrl, signingSecret: config.signingSecret };
  return config.backend === 'memory'
    ? createStorage({ driver: 'memory', ...common })
    : createStorage({ driver: 'fs', root: config.local.path, fsync: config.local.fsync, ...common });
}
