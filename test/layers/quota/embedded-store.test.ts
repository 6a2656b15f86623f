/**
 * The embedded quota store: the cases every store passes, on a real folder, plus what is
 * its own: the journal replayed after a restart (a torn last line ignored), compaction
 * into a snapshot without counting a line twice, and a read-only reader beside the owner.
 */
import assert from 'node:assert/strict';
import { appendFile, mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { EmbeddedQuotaStore } from '../../../src/layers/quota/embedded-store.js';
import { counterId } from '../../../src/layers/quota/store.js';
import { storeCases } from './store-cases.js';

storeCases('embedded', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'stowage-embedded-store-'));
  const store = new EmbeddedQuotaStore(dir);
  await store.open();
  return { store, close: async () => {
    await store.close();
    await rm(dir, { recursive: true, force: true });
  } };
});

const ANN = counterId('users/*/', 'users/ann/');

describe('embedded quota store', () => {
  it('replays its journal after a restart, ignoring a torn last line, and hands back unsettled writes', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'stowage-embedded-replay-'));
    try {
      const first = new EmbeddedQuotaStore(dir);
      await first.open();
      await first.reserve({ id: 'w1', key: 'users/ann/a', before: null, expiresAt: Infinity, items: [{ counter: ANN, bytes: 10, objects: 1 }] });
      await first.settle(['w1'], [{ counter: ANN, bytes: 10, objects: 1 }]);
      await first.reserve({ id: 'w2', key: 'users/ann/b', before: { size: 3, etag: 'e' }, expiresAt: Infinity, items: [{ counter: ANN, bytes: 5, objects: 0 }] });
      // A process killed mid-append leaves a partial line; the owner's lock stays behind too.
      const journal = (await readdir(dir)).find((n) => n.startsWith('journal-')) as string;
      await appendFile(join(dir, journal), '{"t":"s","ids":["w2"],"del');
      await rm(join(dir, 'lock'));
      const second = new EmbeddedQuotaStore(dir);
      const pending = await second.open();
      assert.deepEqual(pending.map((p) => [p.id, p.key, p.before]), [['w2', 'users/ann/b', { size: 3, etag: 'e' }]]);
      assert.deepEqual((await second.read([ANN])).get(ANN), { bytes: 10, objects: 1, reservedBytes: 5, reservedObjects: 0 });
      await second.close();
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('keeps the change whose journal line sets off a compaction (the 100,000th)', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'stowage-embedded-bound-'));
    try {
      const store = new EmbeddedQuotaStore(dir);
      await store.open();
      for (let i = 0; i < 100_000; i++) await store.settle([], [{ counter: ANN, bytes: 1, objects: 0 }]);
      await store.close();
      const again = new EmbeddedQuotaStore(dir);
      await again.open();
      assert.deepEqual((await again.read([ANN])).get(ANN), { bytes: 100_000, objects: 0, reservedBytes: 0, reservedObjects: 0 });
      await again.close();
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('folds the journal into a snapshot at start-up, so a second restart counts nothing twice', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'stowage-embedded-compact-'));
    try {
      for (let run = 1; run <= 3; run++) {
        const store = new EmbeddedQuotaStore(dir);
        await store.open();
        await store.settle([], [{ counter: ANN, bytes: 100, objects: 1 }]);
        assert.deepEqual((await store.read([ANN])).get(ANN), { bytes: 100 * run, objects: run, reservedBytes: 0, reservedObjects: 0 });
        await store.close();
      }
      assert.deepEqual((await readdir(dir)).filter((n) => n.startsWith('journal-')).length, 1);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('lets a read-only reader see the owner’s counters without taking the folder or changing anything', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'stowage-embedded-readonly-'));
    try {
      const owner = new EmbeddedQuotaStore(dir);
      await owner.open();
      await owner.settle([], [{ counter: ANN, bytes: 7, objects: 1 }]);
      const reader = new EmbeddedQuotaStore(dir, { readOnly: true });
      await reader.open();
      assert.equal((await reader.read([ANN])).get(ANN)?.bytes, 7);
      await assert.rejects(reader.settle([], [{ counter: ANN, bytes: 1, objects: 0 }]), /read-only/);
      await owner.settle([], [{ counter: ANN, bytes: 1, objects: 0 }]);
      await owner.close();
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
