/** The tus endpoint on the memory and fs backends (cases.ts; RGW in s3.test.ts). */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe } from 'node:test';
import { createStorage, Storage } from '../../../src/index.js';
import { tusCases } from './cases.js';

describe('tus: memory', () => {
  // Two instances in one process share the driver, as they would share a memory backend.
  tusCases(async () => createStorage({ driver: 'memory' }), async (first) => new Storage(first.driver));
});

describe('tus: fs', () => {
  const dirs: string[] = [];
  after(async () => {
    for (const dir of dirs) await rm(dir, { recursive: true, force: true });
  });
  tusCases(
    async () => {
      const dir = await mkdtemp(join(tmpdir(), 'stowage-tus-'));
      dirs.push(dir);
      return createStorage({ driver: 'fs', root: dir });
    },
    async () => createStorage({ driver: 'fs', root: dirs.at(-1) as string }),
  );
});
