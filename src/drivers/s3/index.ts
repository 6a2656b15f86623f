/**
 * `stowage/s3`: the S3 driver (any S3-compatible service) with its options, provider
 * profiles and retry policy. `createStorage({ driver: 's3', ... })` from the main entry
 * builds the same driver.
 */
export { S3Driver } from './driver.js';
export type { S3DriverOptions } from './options.js';
export { PROVIDERS, PROFILES, type ProviderName, type ProviderProfile } from './providers.js';
export { DEFAULT_RETRY_POLICY, type RetryPolicy } from './retry.js';
