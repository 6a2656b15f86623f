/** The tus endpoint on the real RGW: upload sessions as multipart uploads and objects under `.stowage/` (cases.ts). */
import { after, describe } from 'node:test';
import { createStorage, type Storage } from '../../../src/index.js';
import { emptyStorage, s3Options, uniqueBucket } from '../../drivers/s3/env.js';
import { tusCases } from './cases.js';

describe('tus: RGW', () => {
  let storage: Storage | undefined;
  const bucket = uniqueBucket('tus');
  tusCases(
    async () => {
      storage = createStorage({ driver: 's3', ...s3Options(bucket) });
      await storage.verify({ createBucket: true });
      return storage;
    },
    async () => createStorage({ driver: 's3', ...s3Options(bucket) }),
  );
  // After the service's own clean-up (registered by tusCases), the bucket goes.
  after(async () => {
    if (storage) await emptyStorage(storage);
  });
});
