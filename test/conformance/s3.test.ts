/** Runs the conformance suite against the S3 driver on a real S3 server (Ceph RGW), a fresh bucket per case. */
import { createStorage, type S3Driver } from '../../src/index.js';
import { emptyStorage, freshS3Storage } from '../drivers/s3/env.js';
import { runConformance } from './suite.js';

runConformance({
  name: 's3 (Ceph RGW)',
  create: async (options = {}) => {
    const storage = await freshS3Storage('conf');
    // Signing options do not apply to S3 (it presigns natively), but are passed as a user would.
    return Object.keys(options).length === 0 ? storage : createStorage({ driver: (storage.driver as S3Driver), ...options });
  },
  destroy: emptyStorage,
});
