/** Stored image variants on the memory and fs backends (store-cases.ts; RGW in s3.test.ts). */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe } from 'node:test';
import { createStorage, MemoryDriver } from '../../src/index.js';
import { variantCases } from './store-cases.js';

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
