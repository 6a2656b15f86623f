/** Stored image variants on the real RGW: the internal files are objects under `.stowage/internal/variants/` (store-cases.ts). */
import { after, describe } from 'node:test';
import { createStorage } from '../../src/index.js';
import { removeBucket, s3Options, uniqueBucket } from '../drivers/s3/env.js';
import { variantCases } from './store-cases.js';

describe('image variants: RGW', () => {
  const buckets = new Map<string, string>();
  after(async () => {
    for (const bucket of buckets.values()) await removeBucket(bucket);
  });
  variantCases(async (images, place = 'default') => {
    const known = buckets.get(place);
    const bucket = known ?? uniqueBucket(`variants-${place}`);
    buckets.set(place, bucket);
    const storage = createStorage({ driver: 's3', ...s3Options(bucket), images });
    if (!known) await storage.verify({ createBucket: true });
    return storage;
  });
});
