/**
 * Options of the S3 driver, and their resolution: provider profile defaults applied,
 * every number range-checked, and a clear E_CONFIG_INVALID naming the option otherwise.
 */
import type { S3Client, S3ClientConfig } from '@aws-sdk/client-s3';
import { StorageError } from '../../core/errors.js';
import { normalizePrefix } from '../../core/keys.js';
import { DEFAULT_RETRY_POLICY, type RetryPolicy } from './retry.js';
import { PROFILES, PROVIDERS, type ProviderName, type ProviderProfile } from './providers.js';

const MiB = 1024 * 1024;
/** S3's smallest part (all but the last). */
export const MIN_PART_SIZE = 5 * MiB;
/** S3's largest single PutObject, and largest part. */
export const MAX_SINGLE_PUT = 5 * 1024 * MiB;

/** Static keys, or an AWS SDK credential provider (a function resolving to keys, called when the SDK needs them). */
export type S3Credentials = NonNullable<S3ClientConfig['credentials']>;

/** Options of the S3 driver. Only `bucket` is required against AWS. */
export interface S3DriverOptions {
  bucket: string;
  /**
   * Your own SDK client, used for every request and for presigning. It decides the
   * endpoint, region, credentials, path style, sockets and timeouts, so the options that
   * would set those are refused beside it; `storage.close()` leaves it open (it is
   * yours to destroy). Give it `requestChecksumCalculation` and `responseChecksumValidation`
   * `'WHEN_REQUIRED'` for services other than AWS, and `maxAttempts: 1` (Stowage retries).
   */
  client?: S3Client;
  /**
   * Credentials for the client Stowage builds: `{ accessKeyId, secretAccessKey, sessionToken? }`
   * or a provider such as `fromNodeProviderChain()` or `fromTemporaryCredentials(...)`
   * of `@aws-sdk/credential-providers`, whose keys the SDK refreshes. Instead of
   * `accessKeyId` / `secretAccessKey`, not with them.
   */
  credentials?: S3Credentials;
  /** Region; default from the provider profile (`us-east-1` for AWS and self-hosted). */
  region?: string;
  /** Endpoint URL, e.g. `http://127.0.0.1:7480`. Required for self-hosted services. */
  endpoint?: string;
  /** Access key; without it the SDK's default credential chain is used. */
  accessKeyId?: string;
  secretAccessKey?: string;
  sessionToken?: string;
  /** Every key lives under this prefix (a `/` is added if missing). */
  prefix?: string;
  /** Host used in presigned URLs when the service reaches S3 by an internal name. */
  publicUrl?: string;
  /** Provider profile; default `aws` without an endpoint, `minio` (any self-hosted S3) with one. */
  provider?: ProviderName;
  /** Cloudflare account id, for the `r2` endpoint. */
  accountId?: string;
  /** Path-style URLs; default from the profile. */
  forcePathStyle?: boolean;
  /** Most sockets kept open to the endpoint (default 64). */
  maxSockets?: number;
  /** Connect timeout in ms (default 5000). */
  connectTimeoutMs?: number;
  /** A socket idle this long fails the request with E_TIMEOUT (default 30000). */
  socketTimeoutMs?: number;
  /** Bodies at least this large use multipart uploads (default 16 MiB). */
  multipartThreshold?: number;
  /**
   * Part size of multipart uploads (default 8 MiB, at least 5 MiB): the size of every part
   * of a file, and of the first parts of a stream, whose parts grow where the provider
   * allows it (see part-sizes.ts). A file larger than partSize x maxParts gets larger parts.
   */
  partSize?: number;
  /**
   * The most parts one upload may have: the provider's limit (10,000; Scaleway 1,000) and
   * never above it. Lower it for a service with a smaller limit than its profile says.
   */
  maxParts?: number;
  /** Parts uploaded at once (default 4). Memory use is about partSize x concurrency. */
  concurrency?: number;
  /** Copies of objects larger than this use a multipart copy (default and maximum 5 GiB, S3's limit). */
  multipartCopyThreshold?: number;
  /** Retry policy overrides. */
  retry?: Partial<RetryPolicy>;
}

/** Options after defaults and checks. */
export interface ResolvedS3Options {
  bucket: string;
  /** The caller's own client, when one was given: then region, endpoint and credentials are its business. */
  client?: S3Client;
  /** The region of our own client; empty beside a caller's `client`, whose region applies. */
  region: string;
  endpoint?: string;
  credentials?: S3Credentials;
  prefix: string;
  publicUrl?: URL;
  provider: ProviderName;
  profile: ProviderProfile;
  forcePathStyle: boolean;
  maxSockets: number;
  connectTimeoutMs: number;
  socketTimeoutMs: number;
  multipartThreshold: number;
  partSize: number;
  maxParts: number;
  concurrency: number;
  multipartCopyThreshold: number;
  retry: RetryPolicy;
}

function invalid(option: string, message: string): StorageError {
  return new StorageError('E_CONFIG_INVALID', `S3 option ${option} ${message}`);
}

function intInRange(option: string, value: number | undefined, fallback: number, min: number, max: number): number {
  if (value === undefined) return fallback;
  if (!Number.isSafeInteger(value) || value < min || value > max) throw invalid(option, `must be a whole number from ${min} to ${max}, got ${value}`);
  return value;
}

function checkUrl(option: string, value: string): URL {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw invalid(option, `must be a URL such as https://s3.example.com, got ${JSON.stringify(value)}`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw invalid(option, 'must be an http:// or https:// URL');
  return url;
}

/** The options that configure the SDK client, which a caller's own `client` already decides. */
const CLIENT_SETTINGS = ['endpoint', 'region', 'accountId', 'accessKeyId', 'secretAccessKey', 'sessionToken', 'credentials', 'forcePathStyle', 'maxSockets', 'connectTimeoutMs', 'socketTimeoutMs'] as const;

/** Checks a caller's client: one of the SDK (by shape: the caller's copy of the SDK may be another than ours), and alone. */
function checkClient(options: S3DriverOptions): S3Client {
  const { client } = options;
  const shaped = client as Partial<Record<'send' | 'destroy' | 'config', unknown>> | null;
  if (typeof shaped !== 'object' || shaped === null || typeof shaped.send !== 'function' || typeof shaped.destroy !== 'function' || typeof shaped.config !== 'object') {
    throw invalid('client', 'must be an S3Client of @aws-sdk/client-s3');
  }
  const ignored = CLIENT_SETTINGS.filter((name) => options[name] !== undefined);
  if (ignored.length > 0) throw invalid(ignored.join(', '), 'would be ignored beside client: configure your S3Client with them instead (its endpoint, region, credentials, path style and request handler are what Stowage uses)');
  return client as S3Client;
}

/** Checks `credentials`: keys or a provider, and not beside accessKeyId / secretAccessKey. */
function checkCredentials(options: S3DriverOptions): S3Credentials | undefined {
  const { credentials, accessKeyId, secretAccessKey, sessionToken } = options;
  if (credentials === undefined) {
    if ((accessKeyId === undefined) !== (secretAccessKey === undefined)) throw invalid('accessKeyId/secretAccessKey', 'must be given together');
    return accessKeyId !== undefined && secretAccessKey !== undefined ? { accessKeyId, secretAccessKey, sessionToken } : undefined;
  }
  if (accessKeyId !== undefined || secretAccessKey !== undefined || sessionToken !== undefined) {
    throw invalid('credentials', 'and accessKeyId/secretAccessKey/sessionToken cannot be given together: use one of them');
  }
  if (typeof credentials === 'function') return credentials;
  const keys = credentials as Partial<Record<'accessKeyId' | 'secretAccessKey' | 'sessionToken', unknown>> | null;
  const text = (value: unknown) => typeof value === 'string' && value !== '';
  if (typeof keys !== 'object' || keys === null || !text(keys.accessKeyId) || !text(keys.secretAccessKey) || (keys.sessionToken !== undefined && !text(keys.sessionToken))) {
    throw invalid('credentials', 'must be { accessKeyId, secretAccessKey, sessionToken? } (non-empty strings) or a credential provider function');
  }
  return credentials;
}

/** Applies the provider profile and checks every option. */
export function resolveS3Options(options: S3DriverOptions): ResolvedS3Options {
  const { bucket } = options;
  // Bucket naming rules shared by S3 and its clones: 3-63 lowercase letters, digits, dots, hyphens.
  if (typeof bucket !== 'string' || !/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/.test(bucket)) {
    throw invalid('bucket', `must be 3-63 lowercase letters, digits, "." or "-", got ${JSON.stringify(bucket)}`);
  }
  const client = options.client === undefined ? undefined : checkClient(options);
  // As without a client: AWS unless an endpoint of its own is set.
  const customEndpoint = client ? client.config.isCustomEndpoint === true : options.endpoint !== undefined;
  const provider = options.provider ?? (customEndpoint ? 'minio' : 'aws');
  if (!PROVIDERS.includes(provider)) throw invalid('provider', `must be one of ${PROVIDERS.join(', ')}, got ${JSON.stringify(provider)}`);
  const profile = PROFILES[provider];
  // A caller's client knows its region and endpoint; ours are resolved only for a client of our own.
  const region = client ? '' : (options.region ?? profile.defaultRegion);
  if (region === undefined || (!client && region === '')) throw invalid('region', `is required for provider ${provider}`);

  let endpoint = options.endpoint;
  if (endpoint === undefined && profile.endpointTemplate && !client) {
    if (profile.endpointTemplate.includes('{accountId}') && !options.accountId) throw invalid('accountId', `is required for provider ${provider}`);
    endpoint = profile.endpointTemplate.replace('{region}', region).replace('{accountId}', options.accountId ?? '');
  }
  if (endpoint === undefined && profile.endpointRequired && !client) throw invalid('endpoint', `is required for provider ${provider}`);
  if (endpoint !== undefined) endpoint = checkUrl('endpoint', endpoint).href.replace(/\/$/, '');
  const credentials = checkCredentials(options);

  let prefix = '';
  if (options.prefix) {
    try {
      prefix = normalizePrefix(options.prefix.endsWith('/') ? options.prefix : `${options.prefix}/`);
    } catch (err) {
      throw invalid('prefix', (err as Error).message);
    }
  }

  const partSize = intInRange('partSize', options.partSize, 8 * MiB, MIN_PART_SIZE, MAX_SINGLE_PUT);
  const retry = { ...DEFAULT_RETRY_POLICY, ...options.retry };
  intInRange('retry.maxAttempts', retry.maxAttempts, 3, 1, 20);
  return {
    bucket,
    client,
    region,
    endpoint,
    credentials,
    prefix,
    publicUrl: options.publicUrl === undefined ? undefined : checkUrl('publicUrl', options.publicUrl),
    provider,
    profile,
    forcePathStyle: options.forcePathStyle ?? profile.forcePathStyle,
    maxSockets: intInRange('maxSockets', options.maxSockets, 64, 1, 4096),
    connectTimeoutMs: intInRange('connectTimeoutMs', options.connectTimeoutMs, 5000, 1, 600_000),
    socketTimeoutMs: intInRange('socketTimeoutMs', options.socketTimeoutMs, 30_000, 1, 3_600_000),
    multipartThreshold: intInRange('multipartThreshold', options.multipartThreshold, 16 * MiB, MIN_PART_SIZE, MAX_SINGLE_PUT),
    partSize,
    maxParts: intInRange('maxParts', options.maxParts, profile.maxParts, 1, profile.maxParts),
    concurrency: intInRange('concurrency', options.concurrency, 4, 1, 64),
    multipartCopyThreshold: intInRange('multipartCopyThreshold', options.multipartCopyThreshold, MAX_SINGLE_PUT, 0, MAX_SINGLE_PUT),
    retry,
  };
}
