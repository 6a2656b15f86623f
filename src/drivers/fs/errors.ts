/**
 * Maps Node filesystem errors to Stowage codes, with messages that say what to fix.
 * `message` may name paths (it is for logs); `publicMessage` never does.
 */
import { isStorageError, StorageError, type ErrorCode } from '../../core/errors.js';

/** The errno code of a Node system error, if any. */
export function errnoCode(err: unknown): string | undefined {
  return typeof err === 'object' && err !== null && 'code' in err && typeof err.code === 'string' ? err.code : undefined;
}

/**
 * True for the E_BUCKET_NOT_FOUND of a local root that does not exist yet and that the
 * first write creates: it holds no objects, which a caller about to write (a migration
 * target, a fallback's primary) may treat as empty.
 */
export function isUncreatedRoot(err: unknown): boolean {
  return isStorageError(err, 'E_BUCKET_NOT_FOUND') && err.details?.createdByFirstWrite === true;
}

/** What `promise` resolves to, or undefined when it rejects with one of the errno `codes`. */
export async function unlessErrno<T>(promise: Promise<T>, ...codes: string[]): Promise<T | undefined> {
  try {
    return await promise;
  } catch (err) {
    if (codes.includes(errnoCode(err) ?? '')) return undefined;
    throw err;
  }
}

const MAPPING: Record<string, { code: ErrorCode; reason: string; retryable?: boolean }> = {
  EACCES: { code: 'E_ACCESS_DENIED', reason: 'permission denied' },
  EPERM: { code: 'E_ACCESS_DENIED', reason: 'operation not permitted' },
  EROFS: { code: 'E_ACCESS_DENIED', reason: 'the filesystem is read-only' },
  ENOSPC: { code: 'E_QUOTA_EXCEEDED', reason: 'no space left on the device' },
  EDQUOT: { code: 'E_QUOTA_EXCEEDED', reason: 'the disk quota is exhausted' },
  ENAMETOOLONG: { code: 'E_INVALID_KEY', reason: 'a path component is too long for this filesystem' },
  EMFILE: { code: 'E_UNAVAILABLE', reason: 'too many open files in this process', retryable: true },
  ENFILE: { code: 'E_UNAVAILABLE', reason: 'too many open files on this system', retryable: true },
  EAGAIN: { code: 'E_UNAVAILABLE', reason: 'the resource is temporarily unavailable', retryable: true },
  EBUSY: { code: 'E_UNAVAILABLE', reason: 'the resource is busy', retryable: true },
  EIO: { code: 'E_UNAVAILABLE', reason: 'an I/O error occurred on the device', retryable: false },
};

/** Converts a filesystem error into a StorageError; StorageErrors pass through unchanged. */
export function fsError(err: unknown, what: string, key?: string): StorageError {
  if (err instanceof StorageError) return err;
  const errno = errnoCode(err) ?? 'UNKNOWN';
  const mapped = MAPPING[errno];
  const reason = mapped?.reason ?? (err instanceof Error ? err.message : String(err));
  return new StorageError(mapped?.code ?? 'E_UNAVAILABLE', `${what}: ${reason} (${errno})`, {
    key,
    cause: err,
    retryable: mapped?.retryable,
    details: { errno },
  });
}
