/**
 * Maps S3 and network errors to Stowage codes, keeping the provider's error code, the
 * HTTP status and the request id for logs, and deciding what is worth a retry.
 */
import { StorageError, abortedError, errorMessage, isAbortError, isStorageError, type ErrorCode } from '../../core/errors.js';
import type { RetryVerdict } from './retry.js';

interface SdkErrorShape {
  name?: string;
  code?: string;
  message?: string;
  $metadata?: { httpStatusCode?: number; requestId?: string; extendedRequestId?: string };
  $response?: { headers?: Record<string, string | undefined> };
}

const THROTTLING = new Set(['SlowDown', 'Throttling', 'ThrottlingException', 'TooManyRequestsException', 'RequestLimitExceeded', 'ServiceUnavailable']);
const TRANSIENT = new Set(['InternalError', 'RequestTimeout', 'RequestTimeTooSkewed', 'OperationAborted']);
const DENIED = new Set(['AccessDenied', 'InvalidAccessKeyId', 'SignatureDoesNotMatch', 'AllAccessDisabled', 'AccountProblem', 'InvalidToken', 'ExpiredToken']);
const NETWORK_RETRYABLE = new Set(['ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'ECONNREFUSED', 'EAI_AGAIN', 'ECONNABORTED', 'EHOSTUNREACH', 'ENETUNREACH']);
const TIMEOUTS = new Set(['TimeoutError', 'RequestTimeoutError', 'ETIMEDOUT']);

function classifyCode(name: string, status: number | undefined): { code: ErrorCode; retryable: boolean; throttled?: boolean } {
  if (name === 'NoSuchBucket') return { code: 'E_BUCKET_NOT_FOUND', retryable: false };
  if (name === 'NoSuchKey' || (status === 404 && (name === 'NotFound' || name === 'UnknownError' || name === ''))) return { code: 'E_NOT_FOUND', retryable: false };
  if (name === 'NoSuchUpload') return { code: 'E_NOT_FOUND', retryable: false };
  if (DENIED.has(name) || status === 403) return { code: 'E_ACCESS_DENIED', retryable: false };
  if (name === 'PreconditionFailed' || status === 412) return { code: 'E_PRECONDITION_FAILED', retryable: false };
  if (name === 'InvalidRange' || status === 416) return { code: 'E_RANGE_NOT_SATISFIABLE', retryable: false };
  if (name === 'EntityTooLarge') return { code: 'E_TOO_LARGE', retryable: false };
  if (name === 'QuotaExceeded') return { code: 'E_QUOTA_EXCEEDED', retryable: false };
  if (THROTTLING.has(name) || status === 503 || status === 429) return { code: 'E_UNAVAILABLE', retryable: true, throttled: true };
  if (TRANSIENT.has(name) || status === 500 || status === 502 || status === 504) return { code: 'E_UNAVAILABLE', retryable: true };
  if (TIMEOUTS.has(name)) return { code: 'E_TIMEOUT', retryable: true };
  if (NETWORK_RETRYABLE.has(name)) return { code: 'E_UNAVAILABLE', retryable: true };
  if (status !== undefined && status >= 400 && status < 500) return { code: 'E_INVALID_ARGUMENT', retryable: false };
  return { code: 'E_UNAVAILABLE', retryable: status === undefined || status >= 500 };
}

/**
 * No keys were configured and the SDK's default chain found none either: a configuration
 * error to fix, never retried, naming the settings to set and every place the chain looked.
 */
function missingCredentials(err: unknown, key: string | undefined): StorageError {
  return new StorageError(
    'E_CONFIG_INVALID',
    'no S3 credentials: set STORAGE_S3_ACCESS_KEY and STORAGE_S3_SECRET_KEY (or give them in the location, s3://KEY:SECRET@host/bucket). ' +
      "The AWS SDK's default chain found none either; it looked at AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, the shared files ~/.aws/credentials and ~/.aws/config (AWS_PROFILE), " +
      `SSO, a web identity token (AWS_WEB_IDENTITY_TOKEN_FILE), a credential process, and the container and EC2 instance metadata (${errorMessage(err)})`,
    { key, cause: err, retryable: false, details: { providerCode: 'CredentialsProviderError' } },
  );
}

/** The HTTP status an SDK error came with, if it came with a response. */
export function sdkStatus(err: unknown): number | undefined {
  return (err as SdkErrorShape | undefined)?.$metadata?.httpStatusCode;
}

/**
 * The object's size a 416 names: in `Content-Range: bytes *` + `/size` (as RFC 9110
 * asks, and MinIO sends) or in the error document's ActualObjectSize (AWS); undefined
 * when it names none (Ceph RGW 16).
 */
export function unsatisfiedRangeSize(err: unknown): number | undefined {
  const e = (err ?? {}) as SdkErrorShape & { ActualObjectSize?: unknown };
  const fromHeader = /^bytes \*\/(\d+)$/.exec(e.$response?.headers?.['content-range'] ?? '')?.[1];
  const inBody = e.ActualObjectSize;
  const reported = fromHeader ?? (typeof inBody === 'string' || typeof inBody === 'number' ? String(inBody) : undefined);
  return reported !== undefined && /^\d+$/.test(reported) && Number.isSafeInteger(Number(reported)) ? Number(reported) : undefined;
}

/** Converts any error from an S3 call into a StorageError; StorageErrors pass through. */
export function s3Error(err: unknown, what: string, key?: string): StorageError {
  if (err instanceof StorageError) return err;
  // The caller's signal cancelled the request: never retried, never an outage.
  if (isAbortError(err)) return Object.assign(abortedError(undefined, err), { key });
  if (err instanceof Error && err.name === 'CredentialsProviderError') return missingCredentials(err, key);
  const e = (typeof err === 'object' && err !== null ? err : {}) as SdkErrorShape;
  const status = e.$metadata?.httpStatusCode;
  // Network errors carry errno codes; SDK errors carry the S3 error code as `name`.
  const name = (e.code && /^E[A-Z]+$/.test(e.code) ? e.code : e.name) ?? '';
  const verdict = classifyCode(name, status);
  const retryAfter = Number(e.$response?.headers?.['retry-after']);
  const facts = [name, status && `HTTP ${status}`, e.$metadata?.requestId && `request id ${e.$metadata.requestId}`].filter(Boolean).join(', ');
  return new StorageError(verdict.code, `${what}: ${errorMessage(err)}${facts ? ` (${facts})` : ''}`, {
    key,
    cause: err,
    retryable: verdict.retryable,
    details: {
      providerCode: name || undefined,
      httpStatus: status,
      requestId: e.$metadata?.requestId,
      throttled: verdict.throttled,
      retryAfterSeconds: Number.isFinite(retryAfter) && retryAfter >= 0 ? retryAfter : undefined,
    },
  });
}

/** What the retry loop needs to know about a mapped error. */
export function retryVerdict(err: unknown): RetryVerdict {
  if (!(err instanceof StorageError)) return { retryable: false };
  return {
    retryable: err.retryable,
    throttled: err.details?.throttled === true,
    retryAfterSeconds: typeof err.details?.retryAfterSeconds === 'number' ? err.details.retryAfterSeconds : undefined,
  };
}

/** The error thrown when a temporary failure outlasted every attempt. */
export function exhaustedError(err: unknown, attempts: number): StorageError {
  const last = err instanceof StorageError ? err : s3Error(err, 'S3 request failed');
  return new StorageError(last.code === 'E_TIMEOUT' ? 'E_TIMEOUT' : 'E_UNAVAILABLE', `${last.message}; gave up after ${attempts} attempts`, {
    key: last.key,
    cause: last,
    retryable: true,
    details: { ...last.details, attempts },
  });
}

/** Maps a failed condition to the code the caller asked about. */
export function conditionError(err: unknown, key: string, opts: { ifNoneMatch?: '*' }): unknown {
  if (!isStorageError(err, 'E_PRECONDITION_FAILED')) return err;
  return opts.ifNoneMatch
    ? new StorageError('E_ALREADY_EXISTS', `${JSON.stringify(key)} already exists (ifNoneMatch: "*")`, { key, cause: err })
    : new StorageError('E_PRECONDITION_FAILED', `${JSON.stringify(key)} does not match ifMatch`, { key, cause: err });
}
