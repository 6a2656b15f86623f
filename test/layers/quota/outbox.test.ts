/**
 * The quota layer above an outbox (the README's order): a write the outbox queues while
 * the backend is down is checked and counted when it is queued, so a full quota refuses
 * it then, and its delivery later changes nothing; an overwrite queued in an outage
 * counts as a new object (the old one cannot be looked at) until a reconcile.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { EmbeddedQuotaStore, isQueued, MemoryDriver, outboxOf, quotaOf, Storage, withOutbox, withQuotas, type QuotaControl, type WriteResult } from '../../../src/index.js';
import { rejectsWith } from '../../conformance/harness.js';
import { Switch, tempDir } from '../outbox/helpers.js';
import { bytes, used } from './helpers.js';

describe('quota layer above an outbox', () => {
  it('counts queued writes when queued, refuses what does not fit, and delivery changes nothing', async () => {
    const line = new Switch(new MemoryDriver());
    const outbox = withOutbox(line, { dir: await tempDir('quota-outbox'), initialDelayMs: 60_000, onWarning: () => undefined });
    const storage = new Storage<WriteResult>(withQuotas(outbox, { rules: { 'users/*/': { maxBytes: 1000 } }, store: new EmbeddedQuotaStore(await tempDir('quota-outbox-counters')), log: () => undefined }));
    const control = quotaOf(storage.driver) as QuotaControl;
    await storage.put('users/ann/a', bytes(300));
    line.down = true;
    assert.ok(isQueued(await storage.put('users/ann/b', bytes(500))));
    assert.deepEqual(await used(control, 'users/ann/', 'users/*/'), { bytes: 800, objects: 2, reservedBytes: 0 });
    await rejectsWith(storage.put('users/ann/c', bytes(300)), 'E_QUOTA_EXCEEDED');
    // Queued over an existing object: counted as new, since the backend cannot say what it replaces.
    assert.ok(isQueued(await storage.put('users/ann/a', bytes(100))));
    assert.deepEqual(await used(control, 'users/ann/', 'users/*/'), { bytes: 900, objects: 3, reservedBytes: 0 });
    line.down = false;
    const report = await outboxOf(storage.driver)?.drain();
    assert.equal(report?.delivered, 2);
    assert.deepEqual(await used(control, 'users/ann/', 'users/*/'), { bytes: 900, objects: 3, reservedBytes: 0 });
    const fixed = await control.reconcile();
    assert.deepEqual(fixed.drift.map((d) => [d.prefix, d.listed]), [['users/ann/', { bytes: 600, objects: 2 }]]);
    await storage.close();
  });
});
