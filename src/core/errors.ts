/**
 * The error model. Every failure that leaves Stowage is a {@link StorageError}
 * with a stable `code`, so callers (and the HTTP service) branch on codes, never
 * on message text or on a backend's own error types.
 */

/** Every code a {@link StorageError} can carry. The strings are part of the public API and never change. */
export const ErrorCodes = {
  /** The object does not exist. */
  NOT_FOUND: 'E_NOT_FOUND',
  /** A create-only write (`ifNoneMatch: '*'`) found an object, or a key collides with an existing one. */
  ALREADY_EXISTS: 'E_ALREADY_EXISTS',
  /** The key breaks the key rules; the message says which rule. */
  INVALID_KEY: 'E_INVALID_KEY',
  /** An option or argument is malformed. */
  INVALID_ARGUMENT: 'E_INVALID_ARGUMENT',
  /** `ifMatch` did not match the stored ETag. */
  PRECONDITION_FAILED: 'E_PRECONDITION_FAILED',
  /** The requested byte range lies outside the object. */
  RANGE_NOT_SATISFIABLE: 'E_RANGE_NOT_SATISFIABLE',
  /** The body's SHA-256 differs from the expected one; nothing was stored. */
  CHECKSUM_MISMATCH: 'E_CHECKSUM_MISMATCH',
  /** The body is larger than the allowed maximum; nothing was stored. */
  TOO_LARGE: 'E_TOO_LARGE',
  /** A quota, or the disk, is full. */
  QUOTA_EXCEEDED: 'E_QUOTA_EXCEEDED',
  /** Credentials, permissions or a signed URL were refused. */
  ACCESS_DENIED: 'E_ACCESS_DENIED',
  /** The bucket (or storage root) does not exist. */
  BUCKET_NOT_FOUND: 'E_BUCKET_NOT_FOUND',
  /** The backend cannot be reached or failed temporarily. */
  UNAVAILABLE: 'E_UNAVAILABLE',
  /** The operation ran out of time. */
  TIMEOUT: 'E_TIMEOUT',
  /** The configuration is invalid; the message names the setting. */
  CONFIG_INVALID: 'E_CONFIG_INVALID',
  /** The driver does not support this operation; see `storage.capabilities`. */
  UNSUPPORTED: 'E_UNSUPPORTED',
  /** A session write started at another offset than the session's; `details.offset` is the session's. Nothing was written. */
  OFFSET_MISMATCH: 'E_OFFSET_MISMATCH',
  /** The caller cancelled the operation (its AbortSignal fired); a write stored nothing. */
  ABORTED: 'E_ABORTED',
} as const;

/** One of the stable error code strings, e.g. `'E_NOT_FOUND'`. */
export type ErrorCode = (typeof ErrorCodes)[keyof typeof ErrorCodes];

/** Messages that are safe to show an end user: no paths, keys, hosts or secrets. */
export const PUBLIC_MESSAGES: Readonly<Record<ErrorCode, string>> = {
  E_NOT_FOUND: 'The file was not found.',
  E_ALREADY_EXISTS: 'A file with this name already exists.',
  E_INVALID_KEY: 'The file name or path is not allowed.',
  E_INVALID_ARGUMENT: 'The request is invalid.',
  E_PRECONDITION_FAILED: 'The file has changed since it was last read.',
  E_RANGE_NOT_SATISFIABLE: 'The requested range is not available.',
  E_CHECKSUM_MISMATCH: 'The upload was corrupted in transit, please retry.',
  E_TOO_LARGE: 'The file is too large.',
  E_QUOTA_EXCEEDED: 'The storage quota has been exceeded.',
  E_ACCESS_DENIED: 'Access denied.',
  E_BUCKET_NOT_FOUND: 'Storage is not configured correctly.',
  E_UNAVAILABLE: 'Storage is temporarily unavailable, please retry.',
  E_TIMEOUT: 'Storage took too long to respond, please retry.',
  E_CONFIG_INVALID: 'Storage is not configured correctly.',
  E_UNSUPPORTED: 'This operation is not supported by the storage backend.',
  E_ABORTED: 'The operation was cancelled.',
  E_OFFSET_MISMATCH: 'The upload is at another offset; ask for it and resume from there.',
};

/** Codes that describe a temporary condition, worth retrying by default. */
const RETRYABLE_CODES: ReadonlySet<ErrorCode> = new Set<ErrorCode>(['E_UNAVAILABLE', 'E_TIMEOUT']);

/** What a {@link StorageError} is built from. Only `code` and `message` are required. */
export interface StorageErrorInit {
  /** The object key involved, when there is one. */
  key?: string;
  /** The Storage method that failed, e.g. `'put'`. */
  operation?: string;
  /** The backend that failed, e.g. `'fs'`, `'memory'`, `'s3'`. */
  backend?: string;
  /** Overrides the code's default retryability. */
  retryable?: boolean;
  /** The underlying error, kept for logs. */
  cause?: unknown;
  /** Overrides the default end-user message for the code. */
  publicMessage?: string;
  /** Backend details for logs (provider code, HTTP status, request id, ...). */
  details?: Record<string, unknown>;
}

/**
 * The one error type Stowage throws. `message` is for developers and logs (it may
 * name keys and paths); `publicMessage` is safe to show an end user.
 */
export class StorageError extends Error {
  /** The stable code; branch on this. */
  readonly code: ErrorCode;
  /** True when the same call may succeed if repeated later. */
  readonly retryable: boolean;
  /** The key involved, if any. */
  key?: string;
  /** The operation that failed, if known. */
  operation?: string;
  /** The backend that failed, if known. */
  backend?: string;
  /** A message safe for end users. */
  readonly publicMessage: string;
  /** Extra facts for logs. */
  readonly details?: Record<string, unknown>;

  constructor(code: ErrorCode, message: string, init: StorageErrorInit = {}) {
    super(message, init.cause === undefined ? undefined : { cause: init.cause });
    this.name = 'StorageError';
    this.code = code;
    this.retryable = init.retryable ?? RETRYABLE_CODES.has(code);
    this.key = init.key;
    this.operation = init.operation;
    this.backend = init.backend;
    this.publicMessage = init.publicMessage ?? PUBLIC_MESSAGES[code];
    this.details = init.details;
  }

  /** A plain object for structured logs and JSON output. */
  toJSON(): Record<string, unknown> {
    return {
      name: this.name,
      code: this.code,
      message: this.message,
      retryable: this.retryable,
      key: this.key,
      operation: this.operation,
      backend: this.backend,
      details: this.details,
    };
  }
}

/** True when `err` is a {@link StorageError}, optionally with the given code. */
export function isStorageError(err: unknown, code?: ErrorCode): err is StorageError {
  return err instanceof StorageError && (code === undefined || err.code === code);
}

/**
 * Fills in `operation`, `key` and `backend` on a StorageError that does not have
 * them yet, so drivers need not thread context through every helper. Errors of any
 * other type are wrapped as E_UNAVAILABLE: an unknown failure is treated as a
 * backend fault, never swallowed.
 */
export function withContext(err: unknown, ctx: { operation: string; key?: string; backend: string }): StorageError {
  const se =
    err instanceof StorageError
      ? err
      : isAbortError(err)
        ? abortedError(undefined, err)
        : new StorageError('E_UNAVAILABLE', `${ctx.operation} failed: ${errorMessage(err)}`, { cause: err });
  se.operation ??= ctx.operation;
  se.backend ??= ctx.backend;
  if (se.key === undefined && ctx.key !== undefined) se.key = ctx.key;
  return se;
}

/**
 * The error for an operation its caller cancelled: E_ABORTED, never retryable, since
 * retrying would undo the caller's own decision. `signal` gives the reason the caller
 * passed to `abort()`; `cause` the error the cancellation surfaced as, if any.
 */
export function abortedError(signal?: AbortSignal, cause: unknown = signal?.reason): StorageError {
  const reason: unknown = signal?.reason;
  const why = reason instanceof Error && reason.name !== 'AbortError' ? `: ${reason.message}` : '';
  return new StorageError('E_ABORTED', `the operation was cancelled${why}`, { cause, retryable: false });
}

/** True for the errors Node, fetch and the AWS SDK raise when an AbortSignal cancels them. */
export function isAbortError(err: unknown): boolean {
  return err instanceof Error && (err.name === 'AbortError' || (err as { code?: unknown }).code === 'ABORT_ERR');
}

/** The message of any thrown value. */
export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
