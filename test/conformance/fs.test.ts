/**
 * Runs the conformance suite against the filesystem driver, each case in a fresh temp
 * root, once for each way of running the read path's system calls.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createStorage, FsDriver, type Storage } from '../../src/index.js';
import { runConformance } from './suite.js';

const roots = new WeakMap<Storage, string>();

for (const readIo of ['sync', 'async'] as const) {
  runConformance({
    name: readIo === 'sync' ? 'fs' : 'fs (async read I/O)',
    create: async (options = {}) => {
      const root = await mkdtemp(join(tmpdir(), 'stowage-conformance-'));
      const storage = createStorage({ driver: 'fs', root, readIo, ...options });
      roots.set(storage, root);
      return storage;
    },
    destroy: async (storage) => {
      await storage.close();
      const root = roots.get(storage);
      if (root && storage.driver instanceof FsDriver) await rm(root, { recursive: true, force: true });
    },
  });
}
