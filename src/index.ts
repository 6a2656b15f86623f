/**
 * Stowage: object storage for TypeScript and Node.js backends. One async API over the
 * local filesystem, any S3-compatible service, and memory.
 *
 * This entry stays light: importing it loads the core, the fs, memory and fallback
 * drivers and nothing heavy. The S3 driver loads the AWS SDK on its first request, the
 * HTTP service loads Fastify when built, and environment parsing loads zod when called.
 * The subpath entries `stowage/s3`, `stowage/http` and `stowage/migrate` hold the same
 * pieces by area.
 */
export { createStorage, createStorageFromEnv, createStorageFromUrl, type CreateStorageOptions, type FallbackStorageOptions } from './create.js';
export { Storage, type StorageOptions } from './core/storage.js';
export {
  UploadSessions,
  DEFAULT_SESSION_EXPIRES_IN,
  type CompleteSessionOptions,
  type CreateSessionOptions,
  type SessionWriteOptions,
  type UploadSession,
} from './core/upload-sessions.js';
export { SessionBody, type SessionRecord, type SessionCheckpoint, type SessionChunk, type DriverSessionWriteOptions, type DriverSessionCompleteOptions } from './core/sessions.js';
export { MAX_LIST_LIMIT } from './core/options.js';
export { VariantStore, type VariantImage, type PurgeReport } from './images/variant-store.js';
export type { ImagesOptions } from './images/options.js';
export type { VariantSpec, VariantSpecs } from './images/variants.js';
export { checkInternalName, type InternalFilesPage } from './core/internal-files.js';
export { StorageError, ErrorCodes, isStorageError, type ErrorCode, type StorageErrorInit } from './core/errors.js';
export { keyTemplate, normalizeKey, normalizePrefix, compareKeys, MAX_KEY_BYTES, type KeyTemplate } from './core/keys.js';
export { verifySignedUrl, type VerifiedSignedUrl } from './core/signing.js';
export { parseStorageEnv, parseStorageUrl, type StorageConfig, type S3Config } from './core/config.js';
export { PutBody, type BodySummary, type PutBodyChecks } from './core/body.js';
export type { OnProgress, TransferProgress } from './core/progress.js';
export type { ObjectReader } from './core/reads.js';
export { FsDriver } from './drivers/fs/driver.js';
export type { FsDriverOptions } from './drivers/fs/options.js';
export { MemoryDriver } from './drivers/memory/driver.js';
export { FallbackDriver, type FallbackDriverOptions } from './drivers/fallback/driver.js';
export { S3Driver } from './drivers/s3/driver.js';
export type { S3DriverOptions } from './drivers/s3/options.js';
export { PROVIDERS, PROFILES, type ProviderName, type ProviderProfile } from './drivers/s3/providers.js';
export { runLifecycle, type LifecycleReport, type RuleReport, type LifecycleItem, type LifecycleAction, type LifecycleTotal, type RunLifecycleOptions } from './lifecycle/run.js';
export { startLifecycle, describeRun, type LifecycleScheduler, type StartLifecycleOptions, type LifecycleLogger } from './lifecycle/schedule.js';
export { checkLifecycleRules, parseLifecycleRules, type LifecycleRule, type CheckedRule, type ExpireRule, type AbortIncompleteRule, type OrphansRule } from './lifecycle/rules.js';
export { FileRunLock, type RunLock, type RunLease } from './lifecycle/lock.js';
export { migrate, type MigrateOptions, type MigrateProgress, type MigrateReport } from './migrate/migrate.js';
export { DEFAULT_RETRY_POLICY, type RetryPolicy } from './drivers/s3/retry.js';
export { BaseDriver, BASE_DRIVER_CAPABILITIES } from './drivers/base.js';
export { DriverLayer, type AsyncDriverOperation } from './layers/layer.js';
export { withMetrics, storageMetrics, type StorageMetrics } from './layers/metrics.js';
export { withFaults, type Fault, type FaultOptions, type FaultRule, type FaultyDriver, type InjectedFault } from './layers/faults.js';
export { withOutbox, outboxOf, inspectOutbox, OutboxLayer, OutboxControl, type OutboxOptions, type OutboxStatus, type DrainReport, type DeadLetter, type DeliveryOptions, type SpoolStep } from './layers/outbox/index.js';
export { withQuotas, quotaOf, reconcileQuotas, EmbeddedQuotaStore, QuotaLayer, QuotaControl, QuotaMatcher, parseQuotaRules, type QuotaAlert, type QuotaCounterReport, type QuotaLevel, type QuotaOptions, type QuotaDrift, type ReconcileReport, type QuotaLimit, type QuotaRules, type QuotaStore } from './layers/quota/index.js';
export type { QuotaSetup } from './layers/quota/setup.js';
export {
  DRIVER_OPERATIONS,
  type Capabilities,
  type Driver,
  type DriverCapabilities,
  type DriverListOptions,
  type DriverOperation,
  type DriverPresignPostOptions,
  type DriverPutOptions,
  type DriverReadOptions,
  type ReadHints,
  type DriverSignedUrlOptions,
  type ObjectLocation,
  type UnconditionalReadOptions,
} from './core/contract.js';
export type {
  Body,
  ByteRange,
  ConditionalGetOptions,
  GetOptions,
  HealthReport,
  IncompleteUpload,
  ListOptions,
  ListPage,
  NotModified,
  ObjectAttributes,
  ObjectInfo,
  ObjectStream,
  PresignedPost,
  PresignPostOptions,
  PutFileResult,
  PutOptions,
  QueuedWrite,
  ResolvedRange,
  SignedUrl,
  SignedUrlOptions,
  Usage,
  VerifyOptions,
  WriteResult,
} from './core/types.js';
export { isQueued } from './core/objects.js';
// The HTTP service, imported when first used (`stowage/http` has it without the indirection).
export { buildApp, stowageRoutes, DEFAULT_MAX_UPLOAD_SIZE } from './http/deferred.js';
export type { BuildAppOptions, StowageRoutesOptions } from './http/app.js';
export { HTTP_STATUS } from './http/catalogue.js';
export { Authenticator, PERMISSIONS, type AuthConfig, type Permission, type Principal } from './http/auth.js';
