/**
 * The quota layer on the fs backend with the embedded store: limits hold under racing
 * writers, every kind of change is counted exactly (overwrites, deletes, moves, copies,
 * streams, sessions), alerts fire once per crossing, and the counters survive a restart.
 */
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { after, describe, it } from 'node:test';
import { isStorageError, type QuotaRules } from '../../../src/index.js';
import { rejectsWith } from '../../conformance/harness.js';
import { bytes, quotaStorage as withRules, tempRoot, used } from './helpers.js';

const roots: string[] = [];
async function root(name: string): Promise<string> {
  const dir = await tempRoot(name);
  roots.push(dir);
  return dir;
}

for (const index of [false, true]) describe(`quota layer (fs, embedded counters${index ? ', with the index of key sizes' : ''})`, () => {
  const quotaStorage = (dir: string, rules: QuotaRules, setup: Parameters<typeof withRules>[2] = {}) => withRules(dir, rules, { index, ...setup });
  after(async () => {
    const { rm } = await import('node:fs/promises');
    await Promise.all(roots.map((r) => rm(r, { recursive: true, force: true })));
  });

  it('lets exactly as many racing writes through as fit, and stores nothing of the others', async () => {
    const { storage, control } = quotaStorage(await root('race'), { 'users/*/': { maxBytes: 10_000 } });
    const results = await Promise.allSettled(Array.from({ length: 30 }, (_, i) => storage.put(`users/ann/${i}.bin`, bytes(1000))));
    const stored = results.filter((r) => r.status === 'fulfilled').length;
    assert.equal(stored, 10);
    for (const r of results) if (r.status === 'rejected') assert.ok(isStorageError(r.reason, 'E_QUOTA_EXCEEDED'), String(r.reason));
    assert.equal((await storage.usage({ prefix: 'users/ann/' })).objects, 10);
    assert.deepEqual(await used(control, 'users/ann/', 'users/*/'), { bytes: 10_000, objects: 10, reservedBytes: 0 });
    // Another user's folder has its own quota.
    await storage.put('users/bob/a.bin', bytes(9000));
    await storage.close();
  });

  it('refuses a write that does not fit before storing it, with a message naming the quota', async () => {
    const { storage } = quotaStorage(await root('refuse'), { 'users/*/': { maxBytes: 1000 } });
    await storage.put('users/ann/a', bytes(600));
    const err = await rejectsWith(storage.put('users/ann/b', bytes(600)), 'E_QUOTA_EXCEEDED');
    assert.match(err.message, /quota "users\/\*\/" \(for users\/ann\/\) is full: 600 of 1000 bytes used or reserved, and this write needs 600 more/);
    await rejectsWith(storage.stat('users/ann/b'), 'E_NOT_FOUND');
    await storage.close();
  });

  it('counts an overwrite by its difference, so shrinking is allowed when full', async () => {
    const { storage, control } = quotaStorage(await root('overwrite'), { '': { maxBytes: 1000 } });
    await storage.put('a', bytes(900));
    await storage.put('a', bytes(1000));
    assert.deepEqual(await used(control, ''), { bytes: 1000, objects: 1, reservedBytes: 0 });
    await storage.put('a', bytes(10));
    assert.deepEqual(await used(control, ''), { bytes: 10, objects: 1, reservedBytes: 0 });
    await storage.close();
  });

  it('counts deletes, deleteMany, copies and moves on every quota they touch', async () => {
    const { storage, control } = quotaStorage(await root('changes'), { '': { maxBytes: 100_000 }, 'users/*/': { maxBytes: 10_000, maxObjects: 10 } });
    await storage.put('users/ann/a', bytes(100));
    await storage.put('users/ann/b', bytes(200));
    await storage.copy('users/ann/a', 'users/bob/a');
    assert.deepEqual(await used(control, 'users/bob/', 'users/*/'), { bytes: 100, objects: 1, reservedBytes: 0 });
    await storage.move('users/ann/b', 'users/bob/b');
    assert.deepEqual(await used(control, 'users/ann/', 'users/*/'), { bytes: 100, objects: 1, reservedBytes: 0 });
    assert.deepEqual(await used(control, 'users/bob/', 'users/*/'), { bytes: 300, objects: 2, reservedBytes: 0 });
    assert.deepEqual(await used(control, ''), { bytes: 400, objects: 3, reservedBytes: 0 });
    await storage.delete('users/ann/a');
    await storage.delete('users/ann/a');
    assert.deepEqual(await used(control, 'users/ann/', 'users/*/'), { bytes: 0, objects: 0, reservedBytes: 0 });
    await storage.deleteMany(['users/bob/a', 'users/bob/b', 'users/bob/missing']);
    assert.deepEqual(await used(control, ''), { bytes: 0, objects: 0, reservedBytes: 0 });
    await storage.close();
  });

  it('stops a stream of unknown length at the limit, storing nothing, and counts one that fits', async () => {
    const { storage, control } = quotaStorage(await root('stream'), { 'up/': { maxBytes: 3 * 1024 * 1024 } });
    const chunks = (n: number) => Readable.from(Array.from({ length: n }, () => bytes(256 * 1024)));
    await rejectsWith(storage.put('up/big', chunks(16)), 'E_QUOTA_EXCEEDED');
    await rejectsWith(storage.stat('up/big'), 'E_NOT_FOUND');
    assert.deepEqual(await used(control, 'up/'), { bytes: 0, objects: 0, reservedBytes: 0 });
    // 2.5 MiB: the 1 MiB steps do not fit three times, the exact remainder does.
    await storage.put('up/fits', chunks(10));
    assert.deepEqual(await used(control, 'up/'), { bytes: 10 * 256 * 1024, objects: 1, reservedBytes: 0 });
    await storage.close();
  });

  it('checks a declared size before reading the body, and refuses a body of another length', async () => {
    const { storage } = quotaStorage(await root('declared'), { '': { maxBytes: 1000 } });
    let read = false;
    const body = Readable.from((async function* () {
      read = true;
      yield bytes(10);
    })());
    await rejectsWith(storage.put('a', body, { size: 5000 }), 'E_QUOTA_EXCEEDED');
    assert.equal(read, false);
    await rejectsWith(storage.put('b', Readable.from([bytes(10)]), { size: 20 }), 'E_INVALID_ARGUMENT');
    await rejectsWith(storage.stat('b'), 'E_NOT_FOUND');
    await storage.close();
  });

  it('limits objects as well as bytes', async () => {
    const { storage } = quotaStorage(await root('objects'), { 'users/*/': { maxObjects: 2 } });
    await storage.put('users/ann/a', 'a');
    await storage.put('users/ann/b', 'b');
    await storage.put('users/ann/b', 'bb');
    await rejectsWith(storage.put('users/ann/c', 'c'), 'E_QUOTA_EXCEEDED');
    await storage.delete('users/ann/a');
    await storage.put('users/ann/c', 'c');
    await storage.close();
  });

  it('reserves an upload session’s size from creation until it completes or is aborted', async () => {
    const { storage, control } = quotaStorage(await root('sessions'), { 'users/*/': { maxBytes: 1000 } });
    const first = await storage.sessions.create('users/ann/a', { size: 600 });
    assert.equal((await used(control, 'users/ann/', 'users/*/')).reservedBytes, 600);
    await rejectsWith(storage.sessions.create('users/ann/b', { size: 600 }), 'E_QUOTA_EXCEEDED');
    await rejectsWith(storage.put('users/ann/c', bytes(500)), 'E_QUOTA_EXCEEDED');
    await storage.sessions.write(first.id, 0, bytes(600));
    await storage.sessions.complete(first.id);
    assert.deepEqual(await used(control, 'users/ann/', 'users/*/'), { bytes: 600, objects: 1, reservedBytes: 0 });
    const second = await storage.sessions.create('users/ann/b', { size: 400 });
    await storage.sessions.abort(second.id);
    assert.deepEqual(await used(control, 'users/ann/', 'users/*/'), { bytes: 600, objects: 1, reservedBytes: 0 });
    await storage.close();
  });

  it('counts a concatenation of partial sessions against their reservations, not twice', async () => {
    const { storage, control } = quotaStorage(await root('concat'), { 'users/*/': { maxBytes: 1000, maxObjects: 2 } });
    const parts = [await storage.sessions.create('users/ann/p1', { size: 400, partial: true }), await storage.sessions.create('users/ann/p2', { size: 400, partial: true })];
    assert.deepEqual(await used(control, 'users/ann/', 'users/*/'), { bytes: 0, objects: 0, reservedBytes: 800 });
    await storage.sessions.write(parts[0]!.id, 0, bytes(400, 'a'));
    await storage.sessions.write(parts[1]!.id, 0, bytes(400, 'b'));
    // 800 of 1000 bytes are reserved for these very bytes: joining them needs no more room.
    const joined = await storage.sessions.concat('users/ann/joined', parts.map((p) => p.id));
    assert.equal(joined.size, 800);
    assert.deepEqual(await used(control, 'users/ann/', 'users/*/'), { bytes: 800, objects: 1, reservedBytes: 0 });
    // A concatenation still counts its object, and overshooting the room left is refused.
    const third = await storage.sessions.create('users/ann/p3', { size: 150, partial: true });
    await storage.sessions.write(third.id, 0, bytes(150));
    await storage.put('users/ann/other', 'x');
    await rejectsWith(storage.sessions.concat('users/ann/third', [third.id]), 'E_QUOTA_EXCEEDED');
    assert.deepEqual(await used(control, 'users/ann/', 'users/*/'), { bytes: 801, objects: 2, reservedBytes: 150 });
    await storage.close();
  });

  it('checks a session of deferred length after each write, aborting the one that passes the quota', async () => {
    const { storage, control } = quotaStorage(await root('deferred'), { 'users/*/': { maxBytes: 1000 } });
    const session = await storage.sessions.create('users/ann/a');
    await storage.sessions.write(session.id, 0, bytes(600));
    assert.equal((await used(control, 'users/ann/', 'users/*/')).reservedBytes, 600);
    await rejectsWith(storage.sessions.write(session.id, 600, bytes(600)), 'E_QUOTA_EXCEEDED');
    await rejectsWith(storage.sessions.get(session.id), 'E_NOT_FOUND');
    assert.deepEqual(await used(control, 'users/ann/', 'users/*/'), { bytes: 0, objects: 0, reservedBytes: 0 });
    await storage.close();
  });

  it('lets a session’s reservation lapse when the session expires', async () => {
    const { storage, control } = quotaStorage(await root('expiry'), { 'users/*/': { maxBytes: 1000 } });
    await storage.sessions.create('users/ann/a', { size: 900, expiresIn: 1 });
    await rejectsWith(storage.put('users/ann/b', bytes(500)), 'E_QUOTA_EXCEEDED');
    await new Promise((resolve) => setTimeout(resolve, 1100));
    await storage.put('users/ann/b', bytes(500));
    assert.deepEqual(await used(control, 'users/ann/', 'users/*/'), { bytes: 500, objects: 1, reservedBytes: 0 });
    await storage.close();
  });

  it('alerts once per crossing of warnAt and of the limit, and once when back under', async () => {
    const { storage, alerts, logs } = quotaStorage(await root('alerts'), { 'users/*/': { maxBytes: 1000, warnAt: 0.8 } });
    await storage.put('users/ann/a', bytes(500));
    await storage.put('users/ann/b', bytes(300));
    await storage.put('users/ann/c', bytes(50));
    await storage.put('users/ann/d', bytes(150));
    await storage.put('users/ann/d', bytes(150));
    await storage.delete('users/ann/a');
    assert.deepEqual(alerts.map((a) => [a.prefix, a.level, a.used]), [['users/ann/', 'warn', 800], ['users/ann/', 'full', 1000], ['users/ann/', 'ok', 500]]);
    assert.equal(logs.filter((l) => l.startsWith('quota ')).length, 3);
    assert.match(logs[0] as string, /quota "users\/\*\/" for users\/ann\/ passed 80 %: 800 of 1000 bytes/);
    await storage.close();
  });

  it('keeps its counters across a restart, and one process holds the folder at a time', async () => {
    const dir = await root('restart');
    const first = quotaStorage(dir, { '': { maxBytes: 10_000 } });
    await first.storage.put('a', bytes(1234));
    const second = quotaStorage(dir, { '': { maxBytes: 10_000 } });
    await rejectsWith(second.storage.put('b', 'b'), 'E_CONFIG_INVALID');
    await first.storage.close();
    const third = quotaStorage(dir, { '': { maxBytes: 10_000 } });
    assert.deepEqual(await used(third.control, ''), { bytes: 1234, objects: 1, reservedBytes: 0 });
    await third.storage.close();
  });

  it('reconcile finds and repairs drift: objects written around Stowage, a counter gone wrong', async () => {
    const dir = await root('reconcile');
    const { storage, control } = quotaStorage(dir, { 'users/*/': { maxBytes: 100_000 } });
    await storage.put('users/ann/a', bytes(100));
    await storage.put('users/bob/a', bytes(200));
    // Written to the folder directly: the layer never saw it.
    await writeFile(join(dir, 'users', 'ann', 'sneaked'), bytes(50));
    const dry = await control.reconcile({ dryRun: true });
    assert.deepEqual(dry.drift, [{ pattern: 'users/*/', prefix: 'users/ann/', counted: { bytes: 100, objects: 1 }, listed: { bytes: 150, objects: 2 } }]);
    assert.equal(dry.repaired, false);
    assert.equal((await used(control, 'users/ann/', 'users/*/')).bytes, 100);
    const fixed = await control.reconcile();
    assert.equal(fixed.repaired, true);
    assert.deepEqual(await used(control, 'users/ann/', 'users/*/'), { bytes: 150, objects: 2, reservedBytes: 0 });
    assert.deepEqual((await control.reconcile()).drift, []);
    await storage.close();
  });
});
