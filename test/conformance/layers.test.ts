/**
 * Runs the conformance suite through the layers of src/layers/, stacked on the memory
 * and fs drivers: a layer must change nothing a caller can observe. (The metrics layer
 * on S3 runs in s3.test.ts.)
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Registry } from 'prom-client';
import { createStorage, DriverLayer, storageMetrics, withMetrics, type Driver, type Storage } from '../../src/index.js';
import { runConformance } from './suite.js';

const measure = (driver: Driver) => withMetrics(driver, storageMetrics(new Registry()));
const roots = new WeakMap<Storage, string>();

runConformance({
  name: 'memory through the metrics layer',
  create: async (options = {}) => createStorage({ driver: 'memory', ...options }).withDriver(measure),
  destroy: async (storage) => storage.close(),
});

runConformance({
  name: 'memory through a bare DriverLayer',
  create: async (options = {}) => createStorage({ driver: 'memory', ...options }).withDriver((d) => new DriverLayer(d)),
  destroy: async (storage) => storage.close(),
});

runConformance({
  name: 'fs through the metrics layer',
  create: async (options = {}) => {
    const root = await mkdtemp(join(tmpdir(), 'stowage-conformance-layers-'));
    const storage = createStorage({ driver: 'fs', root, ...options }).withDriver(measure);
    roots.set(storage, root);
    return storage;
  },
  destroy: async (storage) => {
    await storage.close();
    const root = roots.get(storage);
    if (root) await rm(root, { recursive: true, force: true });
  },
});
