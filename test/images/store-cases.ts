/**
 * Stored image variants through Storage, the same cases on every backend: rendered once
 * then read back (by another Storage on the same backend too), bound to the original's
 * bytes, the format `Accept` picks, removed with the original, built ahead and purged,
 * eager on upload, and the refusals.
 */
import assert from 'node:assert/strict';
import { it } from 'node:test';
import sharp from 'sharp';
import { isStorageError, PutBody, type ImagesOptions, type Storage } from '../../src/index.js';
import { rejectsWith } from '../conformance/harness.js';

/** Makes a storage on the backend under test; the same `place` gives storages over the same objects. */
export type VariantTarget = (images?: ImagesOptions | false, place?: string) => Promise<Storage>;

/** A photo-like JPEG (a gradient, so encoders have work), `width` x `height`. */
export async function photo(width = 1200, height = 800): Promise<Buffer> {
  const raw = Buffer.alloc(width * height * 3);
  for (let y = 0; y < height; y += 1) for (let x = 0; x < width; x += 1) raw.set([(x * 255) / width, (y * 255) / height, 128], (y * width + x) * 3);
  return sharp(raw, { raw: { width, height, channels: 3 } }).jpeg().toBuffer();
}

/** Every internal file name under `variants/`, once the renditions made so far are stored (they are after the call that made them). */
async function storedVariants(storage: Storage): Promise<string[]> {
  await storage.variants.flush();
  const names: string[] = [];
  let cursor: string | undefined;
  do {
    const page = await storage.driver.listInternal('variants/', cursor);
    names.push(...page.names);
    cursor = page.cursor;
  } while (cursor);
  return names;
}

export function variantCases(make: VariantTarget): void {
  it('renders a variant once, then serves the stored one, bound to the original', async () => {
    const storage = await make({ variants: { thumb: { width: 200, height: 200, fit: 'cover' }, medium: { width: 600, format: 'webp', quality: 70 } } }, 'bound');
    try {
      await storage.put('photos/a.jpg', await photo(), { contentType: 'image/jpeg' });
      const first = await storage.variant('photos/a.jpg', 'thumb');
      assert.equal(first.cached, false);
      assert.equal(first.contentType, 'image/jpeg');
      assert.deepEqual([first.width, first.height], [200, 200]);
      assert.equal(first.source, (await storage.stat('photos/a.jpg')).sha256);
      const meta = await sharp(first.data).metadata();
      assert.deepEqual([meta.format, meta.width, meta.height], ['jpeg', 200, 200]);

      const again = await storage.variant('photos/a.jpg', 'thumb');
      assert.equal(again.cached, true, 'the second request reads the stored rendition');
      assert.deepEqual(again.data, first.data);
      assert.equal(again.etag, first.etag);
      assert.equal((await storedVariants(storage)).length, 1);

      {
        const other = await make({ variants: { thumb: { width: 200, height: 200, fit: 'cover' }, medium: { width: 600, format: 'webp', quality: 70 } } }, 'bound');
        try {
          const there = await other.variant('photos/a.jpg', 'thumb');
          assert.equal(there.cached, true, 'another process on the backend finds it');
          assert.deepEqual(there.data, first.data);
        } finally {
          await other.close();
        }
      }

      // A replaced original never serves the old rendition.
      await storage.put('photos/a.jpg', await photo(300, 600), { contentType: 'image/jpeg' });
      const replaced = await storage.variant('photos/a.jpg', 'medium');
      const thumb = await storage.variant('photos/a.jpg', 'thumb');
      assert.equal(thumb.cached, false, 'a new original is rendered again');
      assert.notEqual(thumb.source, first.source);
      assert.notEqual(thumb.etag, first.etag);
      assert.deepEqual([replaced.contentType, replaced.width, replaced.height], ['image/webp', 300, 600], 'never enlarged');
    } finally {
      await storage.close();
    }
  });

  it('renders again over a stored variant that a crash left short or damaged', async () => {
    const storage = await make(undefined, 'damaged');
    try {
      await storage.put('d.jpg', await photo(400, 400));
      const first = await storage.variant('d.jpg', 'thumb');
      const [file] = await storedVariants(storage);
      const stored = Buffer.from((await storage.driver.readInternal(file as string)) as Uint8Array);
      for (const broken of [stored.subarray(0, stored.length - 100), Buffer.concat([stored.subarray(0, stored.length - 1), Buffer.from([stored[stored.length - 1]! ^ 1])]), Buffer.alloc(0)]) {
        await storage.driver.putInternal(file as string, broken);
        const fresh = await make(undefined, 'damaged'); // no rendition in its memory
        try {
          const again = await fresh.variant('d.jpg', 'thumb');
          assert.equal(again.cached, false, 'a damaged file is not served');
          assert.deepEqual(again.data, first.data);
        } finally {
          await fresh.close();
        }
      }
    } finally {
      await storage.close();
    }
  });

  it("picks AVIF or WebP by Accept, else JPEG, or PNG for an image with alpha", async () => {
    const storage = await make(undefined, 'accept');
    try {
      await storage.put('a.jpg', await photo(400, 300));
      await storage.put('alpha.png', await sharp({ create: { width: 300, height: 300, channels: 4, background: { r: 0, g: 0, b: 255, alpha: 0.5 } } }).png().toBuffer());
      const avif = await storage.variant('a.jpg', 'thumb', { accept: 'image/avif,image/webp,*/*;q=0.8' });
      const webp = await storage.variant('a.jpg', 'thumb', { accept: 'image/webp,*/*' });
      const plain = await storage.variant('a.jpg', 'thumb', { accept: '*/*' });
      const png = await storage.variant('alpha.png', 'thumb');
      assert.deepEqual([avif.contentType, webp.contentType, plain.contentType, png.contentType], ['image/avif', 'image/webp', 'image/jpeg', 'image/png']);
      assert.equal((await sharp(avif.data).metadata()).format, 'heif');
      assert.equal(new Set([avif.etag, webp.etag, plain.etag]).size, 3, 'each rendition its own ETag');
      assert.equal((await storage.variant('a.jpg', 'thumb', { accept: 'image/avif' })).cached, true);
      assert.equal((await storedVariants(storage)).length, 4);
    } finally {
      await storage.close();
    }
  });

  it('removes the variants with their original: delete, deleteMany and move', async () => {
    const storage = await make(undefined, 'removal');
    try {
      const image = await photo(300, 200);
      for (const key of ['x/1.jpg', 'x/2.jpg', 'y/3.jpg', 'z/4.jpg']) {
        await storage.put(key, image);
        await storage.variant(key, 'thumb');
        await storage.variant(key, 'thumb', { accept: 'image/webp' });
      }
      assert.equal((await storedVariants(storage)).length, 8);
      await storage.delete('x/1.jpg');
      assert.equal((await storedVariants(storage)).length, 6);
      await storage.deleteMany({ prefix: 'x/' });
      await storage.deleteMany(['y/3.jpg']);
      assert.equal((await storedVariants(storage)).length, 2);
      await storage.move('z/4.jpg', 'z/5.jpg');
      assert.deepEqual(await storedVariants(storage), [], "a moved object's variants are made again at its new key");
      assert.equal((await storage.variant('z/5.jpg', 'thumb')).cached, false);
    } finally {
      await storage.close();
    }
  });

  it('builds variants ahead, renders eager ones on upload, and purges what cannot be served', async () => {
    const variants = { thumb: { width: 100, height: 100, fit: 'cover' as const, eager: true }, wide: { width: 500, format: 'jpeg' as const } };
    const storage = await make({ variants }, 'purge');
    try {
      for (const key of ['e/1.jpg', 'e/2.jpg', 'e/3.jpg']) await storage.put(key, await photo(600, 400), { contentType: 'image/jpeg' });
      await storage.put('e/notes.txt', 'not an image', { contentType: 'text/plain' });
    } finally {
      await storage.close(); // waits for the eager renders
    }
    const again = await make({ variants }, 'purge');
    try {
      const stored = await storedVariants(again);
      assert.equal(stored.length, 9, `the eager thumbs in AVIF, WebP and JPEG: ${stored.join(', ')}`);
      assert.equal((await again.variant('e/1.jpg', 'thumb', { accept: 'image/webp' })).cached, true);
      const built = await again.variants.build('e/1.jpg', ['wide']);
      assert.deepEqual(built.map((b) => b.contentType), ['image/jpeg']);
      await again.variants.build('e/3.jpg', ['wide']);
      assert.equal((await storedVariants(again)).length, 11);

      // Behind Storage's back: one original gone, another replaced.
      await again.driver.delete('e/1.jpg');
      await again.driver.put('e/3.jpg', new PutBody(await photo(100, 100)), { contentType: 'image/jpeg', metadata: {} });
      assert.deepEqual(await again.variants.purge(), { scanned: 11, removed: 8 });
      assert.equal((await storedVariants(again)).length, 3, "e/2.jpg's thumbs stay");
    } finally {
      await again.close();
    }
    // A changed setting makes a variant's stored renditions unservable too.
    const changed = await make({ variants: { ...variants, thumb: { width: 120, height: 100, fit: 'cover' } } }, 'purge');
    try {
      assert.deepEqual(await changed.variants.purge(), { scanned: 3, removed: 3 });
      await changed.variants.build('e/2.jpg');
      assert.deepEqual(await changed.variants.purge({ all: true }), { scanned: 4, removed: 4 });
      assert.deepEqual(await storedVariants(changed), []);
    } finally {
      await changed.close();
    }
  });

  it('refuses what is not a variant of an image, and everything when variants are off', async () => {
    const storage = await make(undefined, 'refusals');
    try {
      await storage.put('doc.pdf', Buffer.from('%PDF-1.7\n%\xE2\xE3\xCF\xD3\n1 0 obj\n<<>>\nendobj\ntrailer\n<<>>\n%%EOF\n', 'latin1'));
      const type = await rejectsWith(storage.variant('doc.pdf', 'thumb'), 'E_INVALID_ARGUMENT');
      assert.equal(type.details?.reason, 'type');
      assert.match(type.publicMessage, /not an image/);
      const unknown = await rejectsWith(storage.variant('doc.pdf', 'huge'), 'E_INVALID_ARGUMENT');
      assert.equal(unknown.details?.reason, 'variant');
      assert.match(unknown.message, /no image variant "huge"; the configured ones are thumb/);
      await rejectsWith(storage.variant('missing.jpg', 'thumb'), 'E_NOT_FOUND');
      await rejectsWith(storage.variant('../x', 'thumb'), 'E_INVALID_KEY');
      assert.deepEqual(await storedVariants(storage), []);
    } finally {
      await storage.close();
    }
    const off = await make(false, 'refusals');
    try {
      await assert.rejects(off.variant('doc.pdf', 'thumb'), (err) => isStorageError(err, 'E_UNSUPPORTED') && /turned off/.test(err.message));
      await off.delete('doc.pdf');
    } finally {
      await off.close();
    }
  });
}
