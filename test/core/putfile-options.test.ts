/**
 * putFile checks its options before it opens the file: a refused option leaves no file
 * handle open (counted in /proc/self/fd), on a driver that streams the file and on one
 * that copies it natively.
 */
import assert from 'node:assert/strict';
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { it } from 'node:test';
import { createStorage } from '../../src/index.js';
import { rejectsWith } from '../conformance/harness.js';

it('refuses bad putFile options without leaving the file open', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'stowage-putfile-options-'));
  try {
    const file = join(dir, 'a.txt');
    await writeFile(file, 'hello');
    for (const storage of [createStorage({ driver: 'memory' }), createStorage({ driver: 'fs', root: join(dir, 'store') })]) {
      const before = (await readdir('/proc/self/fd')).length;
      for (let i = 0; i < 20; i++) await rejectsWith(storage.putFile('a.txt', file, { sha256: 'not-a-digest' }), 'E_INVALID_ARGUMENT');
      assert.equal((await readdir('/proc/self/fd')).length, before, `no descriptor left open (${storage.backend})`);
      await storage.close();
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
