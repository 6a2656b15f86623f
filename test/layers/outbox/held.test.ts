/**
 * Upload sessions and internal files during an outage (held.ts): a session the backend
 * cannot create is held in the outbox's folder, written there, survives a restart of the
 * layer, and completes into the outbox (queued while the backend is down, stored directly
 * once it is back); an internal file the backend cannot take is held, read back from
 * there, and delivered when the backend answers; sessions the backend holds stay there.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isQueued, MemoryDriver, outboxOf, Storage, withOutbox, type OutboxControl, type WriteResult } from '../../../src/index.js';
import { FAST, sha256, Switch, tempDir, waitFor } from './helpers.js';

const bytes = (n: number, seed: number) => Buffer.from(Array.from({ length: n }, (_, i) => (i * seed) % 251));

/** A storage over memory behind a switch, with an outbox in `dir`. */
function open(dir: string, backend: MemoryDriver, down: boolean) {
  const line = new Switch(backend);
  line.down = down;
  const storage = new Storage<WriteResult>(withOutbox(line, { dir, ...FAST }));
  return { line, storage, control: outboxOf(storage.driver) as OutboxControl };
}

describe('outbox: upload sessions and internal files during an outage', () => {
  it('holds a session begun while the backend is down, across a restart, and queues its object on completion', async () => {
    const dir = await tempDir('outbox-held');
    const backend = new MemoryDriver();
    const first = open(dir, backend, true);
    const data = Buffer.concat([bytes(300_000, 7), bytes(200_000, 13)]);
    const session = await first.storage.sessions.create('uploads/a.bin', { size: data.length, contentType: 'application/x-test', metadata: { 'original-name': 'a.bin' } });
    await first.storage.sessions.write(session.id, 0, data.subarray(0, 300_000));
    assert.deepEqual([(await first.control.status()).heldSessions, (await first.storage.sessions.get(session.id)).offset], [1, 300_000]);
    await first.storage.close();

    // A new process (the same folder), the backend still down: the session resumes at its offset.
    const second = open(dir, backend, true);
    assert.equal((await second.storage.sessions.get(session.id)).offset, 300_000);
    await second.storage.sessions.write(session.id, 300_000, data.subarray(300_000));
    const done = await second.storage.sessions.complete(session.id);
    assert.ok(isQueued(done), 'completed into the outbox while the backend is down');
    assert.equal(done.sha256, sha256(data));
    assert.deepEqual((await second.storage.get('uploads/a.bin')).equals(data), true, 'read back from the queue');
    const status = await second.control.status();
    assert.deepEqual([status.pending, status.heldSessions], [1, 0], 'the session is gone, its object queued');
    await assert.rejects(second.storage.sessions.get(session.id), /the backend is down/, 'no longer held: asked of the backend');

    second.line.down = false;
    await waitFor(async () => (await second.control.status()).pending === 0, 'delivery');
    const stored = await new Storage(backend).stat('uploads/a.bin');
    assert.deepEqual([stored.sha256, stored.contentType, stored.metadata['original-name']], [sha256(data), 'application/x-test', 'a.bin']);
    await second.storage.close();
  });

  it('stores a held session directly once the backend is back, and keeps sessions the backend holds there', async () => {
    const dir = await tempDir('outbox-held');
    const backend = new MemoryDriver();
    const { line, storage, control } = open(dir, backend, false);
    const inBackend = await storage.sessions.create('uploads/b.bin', { size: 10 });
    line.down = true;
    const held = await storage.sessions.create('uploads/c.bin', { size: 10 });
    await storage.sessions.write(held.id, 0, Buffer.from('0123456789'));
    await assert.rejects(storage.sessions.write(inBackend.id, 0, Buffer.from('0123456789')), /down/, "the backend's session waits for the backend");
    line.down = false;
    const info = await storage.sessions.complete(held.id);
    assert.equal(isQueued(info), false, 'stored at once');
    assert.equal((await new Storage(backend).get('uploads/c.bin')).toString(), '0123456789');
    await storage.sessions.write(inBackend.id, 0, Buffer.from('abcdefghij'));
    await storage.sessions.complete(inBackend.id);
    assert.equal((await new Storage(backend).get('uploads/b.bin')).toString(), 'abcdefghij');
    assert.deepEqual([(await control.status()).heldSessions, (await control.status()).pending], [0, 0]);
    await storage.close();
  });

  it('completes a held session once: a retry or a restart after its object was queued only removes the session', async () => {
    const dir = await tempDir('outbox-held');
    const backend = new MemoryDriver();
    const { storage, control } = open(dir, backend, true);
    const data = bytes(50_000, 3);
    const twice = await storage.sessions.create('uploads/d.bin', { size: data.length });
    await storage.sessions.write(twice.id, 0, data);
    const outcomes = await Promise.allSettled([storage.sessions.complete(twice.id), storage.sessions.complete(twice.id)]);
    assert.deepEqual(outcomes.map((o) => o.status).sort(), ['fulfilled', 'rejected'], 'one completion stores, the other finds no session');
    assert.equal((await control.status()).pending, 1, 'queued once');

    // As after a crash between queuing the object and removing the session: the object is there, the session too.
    const again = await storage.sessions.create('uploads/e.bin', { size: data.length });
    await storage.sessions.write(again.id, 0, data);
    await storage.put('uploads/e.bin', data);
    assert.equal((await control.status()).pending, 2);
    const info = await storage.sessions.complete(again.id);
    assert.equal(info.sha256, sha256(data));
    const status = await control.status();
    assert.deepEqual([status.pending, status.heldSessions], [2, 0], 'not queued a second time, and the session is gone');
    await storage.close();
  });

  it('counts held sessions against the outbox\'s disk cap: one that cannot fit is refused (507) before a byte', async () => {
    const dir = await tempDir('outbox-held');
    const line = new Switch(new MemoryDriver());
    line.down = true;
    const storage = new Storage<WriteResult>(withOutbox(line, { dir, maxBytes: 100_000, ...FAST }));
    await assert.rejects(storage.sessions.create('uploads/big.bin', { size: 100_001 }), (err: Error & { code?: string }) => err.code === 'E_QUOTA_EXCEEDED' && /outbox is full/.test(err.message));
    const first = await storage.sessions.create('uploads/a.bin', { size: 60_000 });
    await assert.rejects(storage.sessions.create('uploads/b.bin', { size: 60_000 }), /outbox is full/, 'the first one\'s declared size is counted');
    const deferred = await storage.sessions.create('uploads/c.bin');
    await storage.sessions.write(deferred.id, 0, bytes(30_000, 5));
    // A deferred length is unknown: a write that starts under the cap may pass it, and the next is refused.
    await storage.sessions.write(deferred.id, 30_000, bytes(20_000, 5));
    await storage.sessions.write(deferred.id, 50_000, bytes(10, 5)).then(
      () => assert.fail('a deferred session past the cap takes no more'),
      (err: Error & { code?: string }) => assert.equal(err.code, 'E_QUOTA_EXCEEDED'),
    );
    await storage.sessions.abort(first.id);
    await storage.close();
  });

  it('holds internal files the backend cannot take, serves the newest, and delivers them when it answers', async () => {
    const dir = await tempDir('outbox-held');
    const backend = new MemoryDriver();
    const { line, storage, control } = open(dir, backend, false);
    const driver = storage.driver;
    await driver.putInternal('tus/one.json', Buffer.from('v1'));
    line.down = true;
    await driver.putInternal('tus/one.json', Buffer.from('v2'));
    await driver.putInternal('tus/two.json', Buffer.from('t1'));
    await assert.rejects(driver.putInternal('variants/x/thumb.jpg', Buffer.from('cache'), { cache: true }), /down/, 'cache files are not held');
    assert.equal(Buffer.from((await driver.readInternal('tus/one.json')) ?? []).toString(), 'v2', 'the held version, not the backend\'s older one');
    await driver.putInternal('tus/one.json', Buffer.from('v3'));
    assert.equal((await control.status()).heldFiles, 2);
    assert.equal(Buffer.from((await backend.readInternal('tus/one.json')) ?? []).toString(), 'v1');
    line.down = false;
    await waitFor(async () => (await control.status()).heldFiles === 0, 'the held files delivered');
    assert.equal(Buffer.from((await backend.readInternal('tus/one.json')) ?? []).toString(), 'v3');
    assert.equal(Buffer.from((await backend.readInternal('tus/two.json')) ?? []).toString(), 't1');
    await driver.putInternal('tus/one.json', Buffer.from('v4'));
    assert.equal(Buffer.from((await backend.readInternal('tus/one.json')) ?? []).toString(), 'v4', 'written to the backend again');
    await storage.close();
  });

  it('delivers held internal files after a restart, and removes a held one with the backend\'s copy', async () => {
    const dir = await tempDir('outbox-held');
    const backend = new MemoryDriver();
    const first = open(dir, backend, true);
    await first.storage.driver.putInternal('tus/kept.json', Buffer.from('kept'));
    await first.storage.driver.putInternal('tus/gone.json', Buffer.from('gone'));
    await first.storage.driver.deleteInternal(['tus/gone.json']).catch(() => undefined);
    assert.equal((await first.control.status()).heldFiles, 2, 'a delete the backend refused removes nothing');
    first.line.down = false;
    await first.storage.driver.deleteInternal(['tus/gone.json']);
    assert.equal(await first.storage.driver.readInternal('tus/gone.json'), undefined);
    first.line.down = true;
    await first.storage.close();
    const second = open(dir, backend, false);
    await waitFor(async () => (await second.control.status()).heldFiles === 0, 'delivery after the restart');
    assert.equal(Buffer.from((await backend.readInternal('tus/kept.json')) ?? []).toString(), 'kept');
    assert.equal(await backend.readInternal('tus/gone.json'), undefined);
    await second.storage.close();
  });
});
