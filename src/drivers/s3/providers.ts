/**
 * Provider profiles: what each S3-compatible service needs that the SDK's AWS
 * defaults get wrong. A profile fills in what the user did not set explicitly.
 */

/** Names accepted by `provider` / STORAGE_S3_PROVIDER. */
export const PROVIDERS = ['aws', 'minio', 'ceph', 'hetzner', 'r2', 'spaces', 'b2', 'scaleway'] as const;

/** A provider name. */
export type ProviderName = (typeof PROVIDERS)[number];

/** What a provider needs. */
export interface ProviderProfile {
  /** The endpoint, with `{region}` or `{accountId}` filled in; undefined: the SDK's AWS endpoint, or must be given. */
  endpointTemplate?: string;
  /** Whether the endpoint must be given explicitly (self-hosted services). */
  endpointRequired: boolean;
  /** Region used when none is given. */
  defaultRegion?: string;
  /** Path-style URLs (`host/bucket/key`) instead of virtual-hosted (`bucket.host/key`). */
  forcePathStyle: boolean;
  /**
   * The SDK's checksum mode. Non-AWS services reject the SDK's default aws-chunked bodies
   * with trailing checksums (Ceph RGW 16: 411 MissingContentLength), so they get
   * WHEN_REQUIRED, and Stowage's own SHA-256 covers integrity.
   */
  checksums: 'WHEN_SUPPORTED' | 'WHEN_REQUIRED';
  /** Object ACLs are supported. */
  acl: boolean;
  /** The most parts one multipart upload may have (AWS and most clones 10,000; Scaleway 1,000). */
  maxParts: number;
  /**
   * Every part but the last must have the same size (R2). Files always get equal parts;
   * streams of unknown size get growing parts only where this is false, so on R2 a stream
   * holds at most partSize x maxParts bytes.
   */
  equalParts: boolean;
  /**
   * Which PutObject conditions the service enforces: `full` (If-None-Match and If-Match),
   * `if-none-match` (Ceph RGW 16 answers If-Match with 412 even when the ETag matches),
   * or `none`. Conditions it lacks are checked with a HEAD first, which is not atomic.
   */
  conditionalPut: 'full' | 'if-none-match' | 'none';
  /**
   * The header a CopyObject's source condition is read from besides the standard
   * `x-amz-copy-source-if-match`: Ceph RGW 16 reads only its own `x-amz-copy-if-match`
   * (measured: with the standard header alone, a copy whose source had changed went
   * through). Its UploadPartCopy honours neither, which a multipart copy checks itself.
   */
  copyIfMatchHeader?: 'x-amz-copy-if-match';
}

/** The profiles; see the README's provider table. */
export const PROFILES: Record<ProviderName, ProviderProfile> = {
  aws: { endpointRequired: false, defaultRegion: 'us-east-1', forcePathStyle: false, checksums: 'WHEN_SUPPORTED', acl: true, maxParts: 10_000, equalParts: false, conditionalPut: 'full' },
  minio: { endpointRequired: true, defaultRegion: 'us-east-1', forcePathStyle: true, checksums: 'WHEN_REQUIRED', acl: false, maxParts: 10_000, equalParts: false, conditionalPut: 'full' },
  ceph: { endpointRequired: true, defaultRegion: 'us-east-1', forcePathStyle: true, checksums: 'WHEN_REQUIRED', acl: true, maxParts: 10_000, equalParts: false, conditionalPut: 'if-none-match', copyIfMatchHeader: 'x-amz-copy-if-match' },
  hetzner: { endpointTemplate: 'https://{region}.your-objectstorage.com', endpointRequired: false, forcePathStyle: false, checksums: 'WHEN_REQUIRED', acl: true, maxParts: 10_000, equalParts: false, conditionalPut: 'none' },
  r2: { endpointTemplate: 'https://{accountId}.r2.cloudflarestorage.com', endpointRequired: false, defaultRegion: 'auto', forcePathStyle: true, checksums: 'WHEN_REQUIRED', acl: false, maxParts: 10_000, equalParts: true, conditionalPut: 'full' },
  spaces: { endpointTemplate: 'https://{region}.digitaloceanspaces.com', endpointRequired: false, forcePathStyle: false, checksums: 'WHEN_REQUIRED', acl: true, maxParts: 10_000, equalParts: false, conditionalPut: 'none' },
  b2: { endpointTemplate: 'https://s3.{region}.backblazeb2.com', endpointRequired: false, forcePathStyle: false, checksums: 'WHEN_REQUIRED', acl: false, maxParts: 10_000, equalParts: false, conditionalPut: 'none' },
  scaleway: { endpointTemplate: 'https://s3.{region}.scw.cloud', endpointRequired: false, forcePathStyle: false, checksums: 'WHEN_REQUIRED', acl: true, maxParts: 1_000, equalParts: false, conditionalPut: 'none' },
};
