/**
 * The fs driver's reads for callers that take the content whole (`bufferUpTo`):
 * `Storage.get` and an image variant's original. Up to the caller's bound (and the
 * driver's own, per read mode) the object comes as `bytes` from one read of the open
 * file; past either bound it streams, so a caller can refuse an object it finds too large
 * without reading it.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import { syncBuiltinESMExports } from 'node:module';
import { describe, it } from 'node:test';
import { createStorage, type StorageError } from '../../../src/index.js';
import { readAll } from '../../../src/core/body.js';
import { FsDriver } from '../../../src/drivers/fs/driver.js';
import { ObservedReads, suiteRoots } from './helpers.js';

/** A storage on a fresh root and its fs driver, with `bytes` stored at `key`. */
async function stored(label: string, readIo: 'sync' | 'async', key: string, bytes: Buffer) {
  const driver = new FsDriver({ root: await root(label), readIo });
  const storage = createStorage({ driver });
  await storage.put(key, bytes);
  return { driver, storage };
}

const root = suiteRoots();
// Larger than the 256 KiB the driver reads in one call for any caller.
const big = randomBytes(3 * 1024 * 1024 + 17);

for (const readIo of ['sync', 'async'] as const) {
  describe(`fs driver: buffered reads (readIo ${readIo})`, () => {
    it('gives a large object as bytes when the caller takes it whole, and streams it otherwise', async () => {
      const { driver, storage } = await stored('buffered', readIo, 'photos/big.jpg', big);

      const whole = await driver.read('photos/big.jpg', { bufferUpTo: Infinity });
      assert.ok(whole.bytes, 'one buffer for a caller taking the object whole');
      assert.deepEqual(whole.bytes, big);
      assert.equal(whole.info.size, big.length);

      const streamed = await driver.read('photos/big.jpg', {});
      assert.equal(streamed.bytes, undefined, 'a plain read streams a large object');
      assert.deepEqual(await readAll(streamed.stream), big);
      await storage.close();
    });

    it('streams an object over the caller\'s bound, unread, and reads a range whole', async () => {
      const { driver, storage } = await stored('bounded', readIo, 'photos/big.jpg', big);

      const over = await driver.read('photos/big.jpg', { bufferUpTo: big.length - 1 });
      assert.equal(over.bytes, undefined, 'over the bound: a stream the caller may destroy unread');
      over.stream.destroy();

      const range = await driver.read('photos/big.jpg', { bufferUpTo: 1024 * 1024, range: { start: 10, end: 1024 * 1024 + 9 } });
      assert.deepEqual(range.bytes, big.subarray(10, 1024 * 1024 + 10));
      await storage.close();
    });

    it('reads into a buffer the caller lends, giving exactly the content whatever the buffer held', async () => {
      const { driver, storage } = await stored('lent', readIo, 'photos/big.jpg', big);
      const lent = Buffer.alloc(big.length + 1000, 0xee);
      const whole = await driver.read('photos/big.jpg', { bufferUpTo: Infinity, bufferFor: () => lent });
      assert.equal(whole.bytes?.buffer, lent.buffer, 'a view of the lent buffer');
      assert.deepEqual(whole.bytes, big);
      lent.fill(0xdd);
      const range = await driver.read('photos/big.jpg', { bufferUpTo: Infinity, bufferFor: () => lent, range: { start: 5, end: 70_004 } });
      assert.equal(range.bytes?.buffer, lent.buffer);
      assert.deepEqual(range.bytes, big.subarray(5, 70_005));
      await storage.close();
    });

    if (readIo === 'sync') {
      it('fails a file cut short between its open and its read, retryably, instead of giving fewer bytes', async () => {
        const { driver, storage } = await stored('cut', readIo, 'docs/cut.bin', big);
        // Another program truncates the file in place just before the driver's read.
        const readSync = fs.readSync;
        fs.readSync = ((fd: number, ...rest: Parameters<typeof fs.readSync> extends [number, ...infer R] ? R : never) => {
          fs.truncateSync(fs.readlinkSync(`/proc/self/fd/${fd}`), 1000);
          return (readSync as (fd: number, ...args: unknown[]) => number)(fd, ...rest);
        }) as typeof fs.readSync;
        syncBuiltinESMExports();
        try {
          await assert.rejects(driver.read('docs/cut.bin', { bufferUpTo: Infinity }), (err: StorageError) => {
            assert.equal(err.code, 'E_UNAVAILABLE');
            assert.equal(err.retryable, true);
            assert.match(err.message, /ended at byte 1000, short of the 3145745 bytes/);
            return true;
          });
        } finally {
          fs.readSync = readSync;
          syncBuiltinESMExports();
          await storage.close();
        }
      });

      it('streams an object over 8 MiB even to a caller taking it whole, keeping the event loop free', async () => {
        const huge = randomBytes(8 * 1024 * 1024 + 1);
        const { driver, storage } = await stored('huge', readIo, 'docs/huge.bin', huge);
        const read = await driver.read('docs/huge.bin', { bufferUpTo: Infinity });
        assert.equal(read.bytes, undefined);
        assert.deepEqual(await readAll(read.stream), huge);
        await storage.close();
      });
    }

    it('Storage.get reads a large object whole, or streams it for a caller following progress', async () => {
      const driver = new ObservedReads({ root: await root('get'), readIo });
      const storage = createStorage({ driver });
      await storage.put('docs/big.bin', big);
      assert.deepEqual(await storage.get('docs/big.bin'), big);
      const progress: number[] = [];
      assert.deepEqual(await storage.get('docs/big.bin', { onProgress: ({ bytes }) => progress.push(bytes) }), big);
      assert.deepEqual(driver.bytesOf().map((bytes) => bytes !== undefined), [true, false]);
      assert.ok(progress.length > 2 && progress.at(-1) === big.length, `told as it read: ${progress.join(', ')}`);
      await storage.close();
    });
  });
}
