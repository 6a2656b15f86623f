/**
 * Configuring the outbox: `createStorage({ outbox })` (typed `Storage<WriteResult>`),
 * STOWAGE_OUTBOX_DIR and STOWAGE_OUTBOX_MAX_BYTES through createStorageFromEnv (bad
 * values are E_CONFIG_INVALID naming the variable), and the options withOutbox refuses.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { createStorage, createStorageFromEnv, createStorageFromUrl, MemoryDriver, outboxOf, parseStorageEnv, withOutbox, type ObjectInfo, type Storage, type WriteResult } from '../../../src/index.js';
import { rejectsWith } from '../../conformance/harness.js';
import { tempDir } from './helpers.js';

describe('outbox configuration', () => {
  it('createStorage({ outbox }) wraps the driver in an outbox and is typed Storage<WriteResult>', async () => {
    const dir = await tempDir('outbox-config');
    const storage = createStorage({ driver: 'memory', outbox: { dir, maxBytes: 1000 } });
    const typed: Storage<WriteResult> = storage;
    // @ts-expect-error a storage with an outbox may answer a QueuedWrite: it is no Storage<ObjectInfo>
    const wrong: Storage<ObjectInfo> = storage;
    void wrong;
    assert.equal((await outboxOf(typed.driver)?.status())?.maxBytes, 1000);
    assert.equal(outboxOf(createStorage({ driver: 'memory' }).driver), undefined);
    await storage.close();
  });

  it('reads STOWAGE_OUTBOX_DIR and STOWAGE_OUTBOX_MAX_BYTES; a location URL never has the outbox', async () => {
    const dir = await tempDir('outbox-env');
    const env = { STORAGE_BACKEND: 'memory', STOWAGE_OUTBOX_DIR: join(dir, 'box'), STOWAGE_OUTBOX_MAX_BYTES: '4096' };
    assert.deepEqual(parseStorageEnv(env).outbox, { dir: join(dir, 'box'), maxBytes: 4096 });
    const storage = createStorageFromEnv(env);
    const status = await outboxOf(storage.driver)?.status();
    assert.equal(status?.maxBytes, 4096);
    assert.equal(status?.dir, join(dir, 'box'));
    await storage.close();
    assert.equal(outboxOf(createStorageFromUrl('memory:', env).driver), undefined);
    assert.equal(parseStorageEnv({ STOWAGE_OUTBOX_DIR: '' }).outbox, undefined, 'empty means unset');
  });

  it('refuses bad values with E_CONFIG_INVALID naming the variable', async () => {
    for (const value of ['lots', '-1', '1.5', '0']) {
      assert.throws(() => parseStorageEnv({ STOWAGE_OUTBOX_DIR: '/tmp/x', STOWAGE_OUTBOX_MAX_BYTES: value }), (err: Error & { code?: string }) => {
        assert.equal(err.code, 'E_CONFIG_INVALID');
        assert.match(err.message, /STOWAGE_OUTBOX_MAX_BYTES/);
        return true;
      });
    }
    assert.throws(() => parseStorageEnv({ STOWAGE_OUTBOX_MAX_BYTES: '100' }), /STOWAGE_OUTBOX_MAX_BYTES is set but STOWAGE_OUTBOX_DIR is not/);
    assert.throws(() => withOutbox(new MemoryDriver(), { dir: '' }), /outbox.dir must be a folder path/);
    assert.throws(() => withOutbox(new MemoryDriver(), { dir: '/tmp/x', maxBytes: -5 }), /outbox.maxBytes must be a whole number/);
    assert.throws(() => withOutbox(new MemoryDriver(), { dir: '/tmp/x', concurrency: 0 }), /outbox.concurrency must be a whole number/);
  });

  it('an outbox folder that cannot be made fails every operation with the reason', async () => {
    const dir = await tempDir('outbox-bad-dir');
    const { writeFile } = await import('node:fs/promises');
    await writeFile(join(dir, 'file'), 'not a folder');
    const storage = createStorage({ driver: 'memory', outbox: { dir: join(dir, 'file', 'box') } });
    await rejectsWith(storage.put('a', 'b'), 'E_CONFIG_INVALID', 'cannot be used');
    await rejectsWith(storage.stat('a'), 'E_CONFIG_INVALID', 'cannot be used');
    await storage.close();
  });
});
