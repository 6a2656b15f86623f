/**
 * Runs the conformance suite through the layers of src/layers/, stacked on the memory
 * and fs drivers: a layer must change nothing a caller can observe. (The metrics layer
 * on S3 runs in s3.test.ts, the quota layer on S3 in quota tests of test/layers/quota/.)
 */
import { Registry } from 'prom-client';
import { createStorage, DriverLayer, storageMetrics, withFaults, withMetrics, type Driver, type QuotaRules } from '../../src/index.js';
import { inTempRoot } from './harness.js';
import { runConformance } from './suite.js';

const measure = (driver: Driver) => withMetrics(driver, storageMetrics(new Registry()));

runConformance({
  name: 'memory through the metrics layer',
  create: async (options = {}) => createStorage({ driver: 'memory', ...options }).withDriver(measure),
  destroy: async (storage) => storage.close(),
});

runConformance({
  name: 'memory through the fault layer without rules',
  create: async (options = {}) => createStorage({ driver: 'memory', ...options }).withDriver((d) => withFaults(d, { seed: 1, rules: [] })),
  destroy: async (storage) => storage.close(),
});

runConformance({
  name: 'memory through a bare DriverLayer',
  create: async (options = {}) => createStorage({ driver: 'memory', ...options }).withDriver((d) => new DriverLayer(d)),
  destroy: async (storage) => storage.close(),
});

runConformance(inTempRoot('fs through the metrics layer', (root, options) => createStorage({ driver: 'fs', root, ...options }).withDriver(measure)));
runConformance(inTempRoot('fs through the fault layer without rules', (root, options) => createStorage({ driver: 'fs', root, ...options }).withDriver((d) => withFaults(d, { seed: 1, rules: [] }))));

// Quotas large enough never to refuse, on every key the suite writes (the whole storage,
// and every top folder): the counting must change nothing a caller can observe.
const AMPLE: QuotaRules = { '': { maxBytes: 2 ** 50, maxObjects: 2 ** 40 }, '*/': { maxBytes: 2 ** 50 } };
runConformance(inTempRoot('fs through the quota layer', (root, options) => createStorage({ driver: 'fs', root, ...options, quotas: { rules: AMPLE, log: () => undefined } })));
runConformance(inTempRoot('memory through the quota layer', (root, options) => createStorage({ driver: 'memory', ...options, quotas: { rules: AMPLE, dir: root, log: () => undefined } })));
