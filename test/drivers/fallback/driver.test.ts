/** The fallback driver with data on both sides: what gradual migration relies on. */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, beforeEach, describe, it } from 'node:test';
import { createStorage, createStorageFromEnv, FallbackDriver, StorageError, type Storage } from '../../../src/index.js';

let dir: string;
let oldStore: Storage;
let newStore: Storage;
const temps: string[] = [];

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'stowage-fallback-'));
  temps.push(dir);
  oldStore = createStorage({ driver: 'fs', root: join(dir, 'old') });
  newStore = createStorage({ driver: 'memory' });
  await oldStore.put('photos/old.jpg', 'old bytes', { contentType: 'image/jpeg', metadata: { owner: 'ann' } });
  await oldStore.put('photos/both.jpg', 'stale copy');
  await newStore.put('photos/both.jpg', 'fresh copy');
  await newStore.put('photos/new.jpg', 'new bytes');
});
after(async () => {
  for (const t of temps) await rm(t, { recursive: true, force: true });
});

const hybrid = (copyOnRead = false) => createStorage({ driver: 'fallback', primary: newStore, secondary: oldStore, copyOnRead });

describe('fallback storage', () => {
  it('reads the primary first and falls back to the secondary', async () => {
    const s = hybrid();
    assert.equal((await s.get('photos/both.jpg')).toString(), 'fresh copy');
    assert.equal((await s.get('photos/old.jpg')).toString(), 'old bytes');
    const info = await s.stat('photos/old.jpg');
    assert.deepEqual([info.contentType, info.metadata.owner], ['image/jpeg', 'ann']);
    await assert.rejects(s.get('photos/none.jpg'), (e: unknown) => e instanceof StorageError && e.code === 'E_NOT_FOUND');
    assert.equal(await newStore.exists('photos/old.jpg'), false, 'without copyOnRead nothing moves');
  });

  it('copies an object over on read with copyOnRead, keeping its type, metadata and digest', async () => {
    const s = hybrid(true);
    const before = await oldStore.stat('photos/old.jpg');
    assert.equal((await s.get('photos/old.jpg')).toString(), 'old bytes');
    const moved = await newStore.stat('photos/old.jpg');
    assert.deepEqual([moved.contentType, moved.metadata.owner, moved.sha256], ['image/jpeg', 'ann', before.sha256]);
  });

  it('writes only to the primary', async () => {
    await hybrid().put('photos/added.jpg', 'x');
    assert.equal(await newStore.exists('photos/added.jpg'), true);
    assert.equal(await oldStore.exists('photos/added.jpg'), false);
  });

  it('lists the union of both in byte order, the primary winning, across pages', async () => {
    for (let i = 0; i < 30; i++) await (i % 2 ? oldStore : newStore).put(`many/${String(i).padStart(2, '0')}`, `v${i}`);
    await oldStore.put('many/04', 'shadowed');
    const s = hybrid();
    const keys: string[] = [];
    let cursor: string | undefined;
    do {
      const page = await s.list({ prefix: 'many/', limit: 7, cursor });
      keys.push(...page.objects.map((o) => o.key));
      cursor = page.cursor;
    } while (cursor);
    assert.deepEqual(keys, Array.from({ length: 30 }, (_, i) => `many/${String(i).padStart(2, '0')}`));
    assert.equal((await s.get('many/04')).toString(), 'v4');
    const top = await s.list({ prefix: 'photos/' });
    assert.deepEqual(top.objects.map((o) => [o.key, o.size]), [['photos/both.jpg', 10], ['photos/new.jpg', 9], ['photos/old.jpg', 9]]);
    assert.deepEqual((await s.list({ delimiter: '/' })).prefixes, ['many/', 'photos/']);
  });

  it('deletes from both, so an old copy never reappears', async () => {
    const s = hybrid();
    await s.delete('photos/both.jpg');
    assert.equal(await s.exists('photos/both.jpg'), false);
    assert.equal(await oldStore.exists('photos/both.jpg'), false);
    assert.equal(await s.deleteMany({ prefix: 'photos/' }), 2);
    assert.deepEqual((await s.list()).objects, []);
  });

  it('lets conditional writes see objects that are only in the secondary', async () => {
    const s = hybrid();
    await assert.rejects(s.put('photos/old.jpg', 'clobber', { ifNoneMatch: '*' }), (e: unknown) => e instanceof StorageError && e.code === 'E_ALREADY_EXISTS');
    const { etag } = await s.stat('photos/old.jpg');
    await s.put('photos/old.jpg', 'updated', { ifMatch: etag });
    assert.equal((await s.get('photos/old.jpg')).toString(), 'updated');
  });

  it('copies and moves objects out of the secondary into the primary', async () => {
    const s = hybrid();
    const copied = await s.copy('photos/old.jpg', 'photos/copy.jpg');
    assert.equal(copied.sha256, (await oldStore.stat('photos/old.jpg')).sha256);
    await s.move('photos/old.jpg', 'photos/moved.jpg');
    assert.equal(await s.exists('photos/old.jpg'), false);
    assert.equal((await newStore.get('photos/moved.jpg')).toString(), 'old bytes');
  });

  it('is configured from the environment with STORAGE_FALLBACK_URL', async () => {
    const s = createStorageFromEnv({ STORAGE_URL: `local:${join(dir, 'new-env')}`, STORAGE_FALLBACK_URL: `local:${join(dir, 'old')}`, STORAGE_FALLBACK_COPY_ON_READ: 'true' });
    assert.ok(s.driver instanceof FallbackDriver);
    assert.equal((await s.get('photos/old.jpg')).toString(), 'old bytes');
    assert.equal(await createStorage({ driver: 'fs', root: join(dir, 'new-env') }).exists('photos/old.jpg'), true);
    assert.deepEqual(Object.keys((await s.health()).detail).sort(), ['primary', 'secondary']);
    assert.throws(() => createStorageFromEnv({ STORAGE_FALLBACK_URL: 'ftp://x' }), /STORAGE_FALLBACK_URL/);
  });
});
