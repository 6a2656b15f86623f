/** The tus endpoint on the memory and fs backends (cases.ts; RGW in s3.test.ts). */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe } from 'node:test';
import { createStorage } from '../../../src/index.js';
import { tusCases } from './cases.js';

describe('tus: memory', () => {
  tusCases(async () => createStorage({ driver: 'memory' }));
});

describe('tus: fs', () => {
  const dirs: string[] = [];
  after(async () => {
    for (const dir of dirs) await rm(dir, { recursive: true, force: true });
  });
  tusCases(async () => {
    const dir = await mkdtemp(join(tmpdir(), 'stowage-tus-'));
    dirs.push(dir);
    return createStorage({ driver: 'fs', root: dir });
  });
});
