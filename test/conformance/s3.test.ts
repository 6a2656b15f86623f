/**
 * Runs the conformance suite against the S3 driver on a real S3 server (Ceph RGW), a
 * fresh bucket per case: once as it is, and once through the metrics layer (what the
 * HTTP service runs), which must change nothing a caller can observe.
 */
import { Registry } from 'prom-client';
import { createStorage, storageMetrics, withMetrics, type Driver } from '../../src/index.js';
import { emptyStorage, freshS3Storage } from '../drivers/s3/env.js';
import { runConformance } from './suite.js';

for (const [name, wrap] of [
  ['s3 (Ceph RGW)', (driver: Driver) => driver],
  ['s3 (Ceph RGW) through the metrics layer', (driver: Driver) => withMetrics(driver, storageMetrics(new Registry()))],
] as const) {
  runConformance({
    name,
    create: async (options = {}) => {
      const storage = await freshS3Storage('conf');
      // Signing options do not apply to S3 (it presigns natively), but are passed as a user would.
      return createStorage({ driver: wrap(storage.driver), ...options });
    },
    destroy: emptyStorage,
  });
}
