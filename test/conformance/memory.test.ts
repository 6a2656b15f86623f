/** Runs the conformance suite against the in-memory driver. */
import { createStorage } from '../../src/index.js';
import { runConformance } from './suite.js';

runConformance({
  name: 'memory',
  create: async (options = {}) => createStorage({ driver: 'memory', ...options }),
  destroy: async (storage) => storage.close(),
});
