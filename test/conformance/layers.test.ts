/**
 * Runs the conformance suite through the layers of src/layers/, stacked on the memory
 * and fs drivers: a layer must change nothing a caller can observe. (The metrics layer
 * on S3 runs in s3.test.ts.)
 */
import { Registry } from 'prom-client';
import { createStorage, DriverLayer, storageMetrics, withFaults, withMetrics, type Driver } from '../../src/index.js';
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
