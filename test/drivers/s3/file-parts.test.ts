/**
 * The digests a resumable putFile reads before it creates the upload: the whole file's
 * SHA-256 and each part's, from one read, for a file whose last part is short; and a file
 * that got shorter meanwhile is a changed file.
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, open, rm, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileDigests, type LocalFile } from '../../../src/drivers/s3/file-parts.js';
import { rejectsWith } from '../../conformance/harness.js';

const PART = 64 * 1024;
let dir: string;
before(async () => (dir = await mkdtemp(join(tmpdir(), 'stowage-file-parts-'))));
after(() => rm(dir, { recursive: true, force: true }));

async function opened(path: string): Promise<LocalFile> {
  const handle = await open(path);
  const stats = await handle.stat();
  return { handle, path, realPath: path, size: stats.size, mtimeMs: stats.mtimeMs, ino: stats.ino };
}

const sha256 = (data: Uint8Array) => createHash('sha256').update(data).digest('hex');

describe('fileDigests', () => {
  it('reads the SHA-256 of the whole file and of each part, the last one short', async () => {
    const data = randomBytes(5 * PART + 1000);
    const path = join(dir, 'parts.bin');
    await writeFile(path, data);
    const file = await opened(path);
    try {
      const digests = await fileDigests(file, 'k', PART);
      assert.equal(digests.sha256, sha256(data));
      const parts = Array.from({ length: 6 }, (_, i) => sha256(data.subarray(i * PART, (i + 1) * PART)));
      assert.deepEqual(digests.partSha256, parts);
    } finally {
      await file.handle.close();
    }
  });

  it('fails with E_INVALID_ARGUMENT when the file got shorter since it was opened', async () => {
    const path = join(dir, 'shrinks.bin');
    await writeFile(path, randomBytes(4 * PART));
    const file = await opened(path);
    try {
      await truncate(path, 2 * PART);
      await rejectsWith(fileDigests(file, 'k', PART), 'E_INVALID_ARGUMENT');
    } finally {
      await file.handle.close();
    }
  });
});
