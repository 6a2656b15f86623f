/**
 * Runs the conformance suite against the fallback driver: an fs primary over a memory
 * secondary, each case in a fresh temp root. The suite writes through the fallback, so
 * this checks that the two backends together keep every promise of one.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createStorage, type Storage } from '../../src/index.js';
import { runConformance } from './suite.js';

const roots = new WeakMap<Storage, string>();

runConformance({
  name: 'fallback (fs over memory)',
  create: async (options = {}) => {
    const root = await mkdtemp(join(tmpdir(), 'stowage-conformance-fallback-'));
    const storage = createStorage({ driver: 'fallback', primary: createStorage({ driver: 'fs', root }), secondary: createStorage({ driver: 'memory' }), ...options });
    roots.set(storage, root);
    return storage;
  },
  destroy: async (storage) => {
    await storage.close();
    const root = roots.get(storage);
    if (root) await rm(root, { recursive: true, force: true });
  },
});
