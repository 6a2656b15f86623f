/** Unit tests for StorageError: codes, retryability, safe public messages, context. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { withContext } from '../../src/core/errors.js';
import { fsError } from '../../src/drivers/fs/errors.js';
import { ErrorCodes, isStorageError, StorageError } from '../../src/index.js';

describe('StorageError', () => {
  it('has every documented code', () => {
    assert.deepEqual(Object.values(ErrorCodes).sort(), [
      'E_ABORTED', 'E_ACCESS_DENIED', 'E_ALREADY_EXISTS', 'E_BUCKET_NOT_FOUND', 'E_CHECKSUM_MISMATCH', 'E_CONFIG_INVALID', 'E_INVALID_ARGUMENT', 'E_INVALID_KEY',
      'E_NOT_FOUND', 'E_OFFSET_MISMATCH', 'E_PRECONDITION_FAILED', 'E_QUOTA_EXCEEDED', 'E_RANGE_NOT_SATISFIABLE', 'E_TIMEOUT', 'E_TOO_LARGE', 'E_UNAVAILABLE', 'E_UNSUPPORTED',
    ]);
  });

  it('marks only temporary conditions retryable by default', () => {
    for (const code of Object.values(ErrorCodes)) {
      assert.equal(new StorageError(code, 'x').retryable, code === 'E_UNAVAILABLE' || code === 'E_TIMEOUT', code);
    }
    assert.equal(new StorageError('E_UNAVAILABLE', 'x', { retryable: false }).retryable, false);
  });

  it('keeps the cause and a public message without internals', () => {
    const cause = new Error('EACCES /srv/secret/path');
    const err = new StorageError('E_ACCESS_DENIED', 'cannot write /srv/secret/path', { cause, key: 'k' });
    assert.equal(err.cause, cause);
    assert.equal(err.publicMessage, 'Access denied.');
    assert.ok(err instanceof Error);
    assert.equal((JSON.parse(JSON.stringify(err)) as { code: string }).code, 'E_ACCESS_DENIED');
  });

  it('adds context once and wraps unknown errors as E_UNAVAILABLE', () => {
    const wrapped = withContext(new TypeError('boom'), { operation: 'put', key: 'k', backend: 'fs' });
    assert.ok(isStorageError(wrapped, 'E_UNAVAILABLE'));
    assert.deepEqual([wrapped.operation, wrapped.key, wrapped.backend], ['put', 'k', 'fs']);
    const kept = withContext(new StorageError('E_NOT_FOUND', 'x', { operation: 'stat' }), { operation: 'exists', backend: 'fs' });
    assert.equal(kept.operation, 'stat');
  });

  it('maps filesystem errno codes', () => {
    const cases: [string, string, boolean][] = [
      ['ENOSPC', 'E_QUOTA_EXCEEDED', false], ['EDQUOT', 'E_QUOTA_EXCEEDED', false], ['EACCES', 'E_ACCESS_DENIED', false],
      ['EROFS', 'E_ACCESS_DENIED', false], ['EMFILE', 'E_UNAVAILABLE', true], ['EIO', 'E_UNAVAILABLE', false], ['ENAMETOOLONG', 'E_INVALID_KEY', false],
    ];
    for (const [errno, code, retryable] of cases) {
      const err = fsError(Object.assign(new Error(errno), { code: errno }), 'writing', 'k');
      assert.equal(err.code, code, errno);
      assert.equal(err.retryable, retryable, errno);
      assert.ok(err.message.includes(errno));
    }
  });
});
