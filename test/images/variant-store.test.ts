/** Stored image variants on the memory and fs backends (store-cases.ts; RGW in s3.test.ts). */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { createStorage, MemoryDriver } from '../../src/index.js';
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
