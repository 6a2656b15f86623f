/**
 * Stowage: object storage for TypeScript and Node.js backends. One async API over the
 * local filesystem and in-memory drivers (S3-compatible services plug in the same way).
 */
export { createStorage, createStorageFromEnv, type CreateStorageOptions } from './create.js';
export { Storage, MAX_LIST_LIMIT, type StorageOptions } from './core/storage.js';
export { StorageError, ErrorCodes, isStorageError, type ErrorCode, type StorageErrorInit } from './core/errors.js';
export { keyTemplate, normalizeKey, normalizePrefix, compareKeys, MAX_KEY_BYTES, type KeyTemplate } from './core/keys.js';
export { verifySignedUrl, type VerifiedSignedUrl } from './core/signing.js';
export { parseStorageEnv, type StorageConfig } from './core/config.js';
export { PutBody, type BodySummary, type PutBodyChecks } from './core/body.js';
export { FsDriver, type FsDriverOptions } from './drivers/fs/driver.js';
export { MemoryDriver } from './drivers/memory/driver.js';
export type {
  Body,
  ByteRange,
  Capabilities,
  Driver,
  DriverPutOptions,
  GetOptions,
  HealthReport,
  ListOptions,
  ListPage,
  ObjectInfo,
  ObjectStream,
  PutOptions,
  ResolvedRange,
  SignedUrl,
  SignedUrlOptions,
  Usage,
} from './core/types.js';
