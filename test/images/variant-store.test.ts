/** Stored image variants on the memory and fs backends (store-cases.ts; RGW in s3.test.ts). */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { createStorage, MemoryDriver } from '../../src/index.js';
import { ObservedReads, suiteRoots } from '../drivers/fs/helpers.js';
import { photo, variantCases } from './store-cases.js';

describe('image variants: memory', () => {
  // One driver per place, so that two storages see the same objects, as two processes would on a shared backend.
  const drivers = new Map<string, MemoryDriver>();
  const driverAt = (place: string) => drivers.get(place) ?? drivers.set(place, new MemoryDriver()).get(place)!;
  variantCases(async (images, place = 'default') => createStorage({ driver: driverAt(place), images }));
});

describe('image variants: fs', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'stowage-variants-'));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });
  variantCases(async (images, place = 'default') => createStorage({ driver: 'fs', root: join(dir, place), images }));
});

describe('storing a rendition', () => {
  /** A backend whose internal writes wait until `open()`. */
  class HeldStores extends MemoryDriver {
    open!: () => void;
    readonly #gate = new Promise<void>((resolve) => (this.open = resolve));
    override async putInternal(name: string, data: Uint8Array): Promise<void> {
      await this.#gate;
      return super.putInternal(name, data);
    }
  }
  const stored = async (driver: MemoryDriver) => (await driver.listInternal('variants/')).names;

  it('answers before the rendition is stored, which a delete waits for', async () => {
    const driver = new HeldStores();
    const storage = createStorage({ driver });
    try {
      await storage.put('a.jpg', await photo(300, 200));
      assert.equal((await storage.variant('a.jpg', 'thumb')).cached, false, 'answered while its store waits');
      assert.equal((await storage.variant('a.jpg', 'thumb')).cached, true, 'served from memory meanwhile');
      assert.deepEqual(await stored(driver), []);
      // The delete removes the rendition once its store has landed, not before (it would come back).
      const deleting = storage.delete('a.jpg');
      driver.open();
      await deleting;
      assert.deepEqual(await stored(driver), []);
    } finally {
      driver.open();
      await storage.close();
    }
  });

  it('is waited for by close', async () => {
    const driver = new HeldStores();
    const storage = createStorage({ driver });
    await storage.put('b.jpg', await photo(300, 200));
    await storage.variant('b.jpg', 'thumb');
    setTimeout(() => driver.open(), 50);
    await storage.close();
    const left = await stored(driver);
    assert.equal(left.length, 1);
    assert.ok(Buffer.from((await driver.readInternal(left[0] as string)) ?? []).includes('"key":"b.jpg"'));
  });
});

describe('reading originals', () => {
  const root = suiteRoots();

  it('reuses the memory of one original for the next, a failed render included, and renders each right', async () => {
    const driver = new ObservedReads({ root: await root('originals') });
    const storage = createStorage({ driver });
    const fresh = createStorage({ driver: 'fs', root: await root('fresh') });
    try {
      const [large, small] = [await photo(1200, 800), await photo(300, 200)];
      assert.ok(large.length > small.length);
      await storage.put('large.jpg', large);
      await storage.put('junk.jpg', Buffer.from('not an image at all'));
      await storage.put('small.jpg', small);
      await fresh.put('small.jpg', small);
      await storage.variant('large.jpg', 'thumb');
      await assert.rejects(storage.variant('junk.jpg', 'thumb'), { code: 'E_INVALID_ARGUMENT' });
      const thumb = await storage.variant('small.jpg', 'thumb');
      const given = driver.bytesOf((key) => key.endsWith('.jpg')).map((bytes) => bytes?.buffer);
      assert.equal(given.length, 3);
      assert.ok(given.every((memory) => memory !== undefined && memory === given[0]), 'one buffer, lent again after each render');
      // The small original was read over what remained of the large one: its thumbnail is
      // still exactly the one a storage that never read another original makes.
      assert.deepEqual(thumb.data, (await fresh.variant('small.jpg', 'thumb')).data);

      // Renders at once each hold a buffer of their own until sharp is done with it.
      const sizes = [[640, 480], [500, 700], [900, 300], [320, 320], [800, 600], [450, 450]] as const;
      const keys = sizes.map(([w, h]) => `at-once/${w}x${h}.jpg`);
      for (const [i, [w, h]] of sizes.entries()) {
        const bytes = await photo(w, h);
        await storage.put(keys[i] as string, bytes);
        await fresh.put(keys[i] as string, bytes);
      }
      for (const batch of [keys.slice(0, 3), keys.slice(3)]) {
        const thumbs = await Promise.all(batch.map((key) => storage.variant(key, 'thumb')));
        for (const [i, key] of batch.entries()) assert.deepEqual(thumbs[i]?.data, (await fresh.variant(key, 'thumb')).data, key);
      }
    } finally {
      await storage.close();
      await fresh.close();
    }
  });
});
