/**
 * The image pipeline on real images made with sharp, and on hostile ones: a decompression
 * bomb (a tiny PNG declaring 1.6 gigapixels), SVG, a PDF, bytes of no type, a truncated
 * JPEG, animations, and metadata with a GPS position that must not survive.
 */
import assert from 'node:assert/strict';
import { crc32 } from 'node:zlib';
import { describe, it } from 'node:test';
import sharp from 'sharp';
import { isStorageError, type ErrorCode } from '../../src/index.js';
import { DEFAULT_IMAGE_LIMITS, renderVariant, type ImageLimits } from '../../src/images/pipeline.js';
import { parseVariants, type Variant, type VariantSpec } from '../../src/images/variants.js';

const variant = (spec: VariantSpec): Variant => parseVariants({ v: spec }).get('v') as Variant;
const limits = (over: Partial<ImageLimits>): ImageLimits => ({ ...DEFAULT_IMAGE_LIMITS, ...over });

function solid(width: number, height: number, channels: 3 | 4 = 3) {
  return sharp({ create: { width, height, channels, background: channels === 4 ? { r: 0, g: 128, b: 255, alpha: 0.5 } : '#c03' } });
}

/** A PNG of only its header: a signature and an IHDR declaring `width` x `height`, with no pixels after. */
function pngHeader(width: number, height: number): Buffer {
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr.set([8, 2, 0, 0, 0], 8);
  const chunk = (type: string, data: Buffer) => {
    const head = Buffer.alloc(8);
    head.writeUInt32BE(data.length, 0);
    head.write(type, 4, 'latin1');
    const crc = Buffer.alloc(4);
    crc.writeUInt32BE(crc32(Buffer.concat([head.subarray(4), data])), 0);
    return Buffer.concat([head, data, crc]);
  };
  return Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), chunk('IHDR', ihdr), chunk('IDAT', Buffer.from([0x78, 0x9c, 0x03, 0x00, 0x00, 0x00, 0x00, 0x01])), chunk('IEND', Buffer.alloc(0))]);
}

async function refusedWith(render: Promise<unknown>, code: ErrorCode, pattern: RegExp, reason?: string): Promise<void> {
  await assert.rejects(render, (err: unknown) => {
    assert.ok(isStorageError(err, code), `expected ${code}, got ${String(err)}`);
    assert.match(err.message, pattern);
    if (reason !== undefined) assert.equal((err.details as { reason?: string } | undefined)?.reason, reason);
    return true;
  });
}

describe('image pipeline', () => {
  it('applies the EXIF orientation and keeps none of the original’s metadata (GPS included)', async () => {
    const original = await solid(300, 200).jpeg().withMetadata({ orientation: 6 }).withExif({ IFD0: { Copyright: 'someone', Make: 'Camera' }, IFD3: { GPSLatitudeRef: 'N', GPSLatitude: '51/1 30/1 0/1' } }).toBuffer();
    const before = await sharp(original).metadata();
    assert.equal(before.orientation, 6);
    assert.ok(before.exif && before.exif.length > 0);
    const out = await renderVariant(original, variant({ width: 100, height: 100, format: 'jpeg' }));
    // Orientation 6 turns the 300x200 landscape into a 200x300 portrait, fitted inside 100x100.
    assert.deepEqual([out.width, out.height, out.format, out.contentType], [67, 100, 'jpeg', 'image/jpeg']);
    const after = await sharp(out.data).metadata();
    assert.deepEqual([after.width, after.height], [67, 100]);
    assert.equal(after.exif, undefined);
    assert.equal(after.orientation, undefined);
    assert.equal(after.xmp, undefined);
    assert.equal(after.iptc, undefined);
    assert.equal(after.icc, undefined);
    assert.ok(!out.data.includes(Buffer.from('someone')));
  });

  it('crops to the box with cover, and never enlarges a small original', async () => {
    const big = await renderVariant(await solid(400, 200).png().toBuffer(), variant({ width: 100, height: 100, fit: 'cover', format: 'png' }));
    assert.deepEqual([big.width, big.height], [100, 100]);
    const small = await renderVariant(await solid(40, 30).png().toBuffer(), variant({ width: 200, height: 200, fit: 'cover', format: 'webp' }));
    assert.deepEqual([small.width, small.height], [40, 30]);
  });

  it('writes an auto variant in the format the request accepts, and as PNG for alpha when none is named', async () => {
    const thumb = variant({ width: 50 });
    const jpeg = await solid(120, 80).jpeg().toBuffer();
    const cases: [Buffer, string | undefined, string, string][] = [
      [jpeg, 'image/avif,image/webp,*/*', 'image/avif', 'heif'],
      [jpeg, 'image/webp,*/*', 'image/webp', 'webp'],
      [jpeg, undefined, 'image/jpeg', 'jpeg'],
      [await solid(120, 80, 4).png().toBuffer(), '*/*', 'image/png', 'png'],
    ];
    for (const [input, accept, type, format] of cases) {
      const out = await renderVariant(input, thumb, DEFAULT_IMAGE_LIMITS, accept);
      assert.equal(out.contentType, type);
      assert.equal((await sharp(out.data).metadata()).format, format, `${accept} -> ${type}`);
    }
  });

  it('refuses a decompression bomb from its header, and an original past the pixel limit', async () => {
    const bomb = pngHeader(40_000, 40_000);
    assert.ok(bomb.length < 100);
    await refusedWith(renderVariant(bomb, variant({ width: 100 })), 'E_TOO_LARGE', /declares 40000x40000 pixels \(1600\.0 megapixels\), over the limit of 50\.0 megapixels/);
    await refusedWith(renderVariant(await solid(100, 60).png().toBuffer(), variant({ width: 10 }), limits({ maxPixels: 5000 })), 'E_TOO_LARGE', /100x60 pixels \(0\.0 megapixels\)/);
    // A JPEG, or a PNG whose alpha does not pick the format, is refused by sharp's own limit
    // without a header read first; the header then says what was over it.
    await refusedWith(renderVariant(bomb, variant({ width: 100, format: 'jpeg' })), 'E_TOO_LARGE', /declares 40000x40000 pixels \(1600\.0 megapixels\)/);
    await refusedWith(renderVariant(await solid(100, 60).jpeg().toBuffer(), variant({ width: 10 }), limits({ maxPixels: 5000 })), 'E_TOO_LARGE', /100x60 pixels/);
  });

  it('refuses an original over the byte limit before reading it', async () => {
    const input = await solid(64, 64).png().toBuffer();
    await refusedWith(renderVariant(input, variant({ width: 10 }), limits({ maxInputBytes: input.length - 1 })), 'E_TOO_LARGE', new RegExp(`is ${input.length} bytes, over the ${input.length - 1} bytes`));
  });

  it('renders only the first frame of an animation unless the variant is animated, counting every frame’s pixels then', async () => {
    const frames = await Promise.all(['#f00', '#0f0', '#00f'].map((c) => sharp({ create: { width: 20, height: 20, channels: 3, background: c } }).png().toBuffer()));
    const gif = await sharp(frames, { join: { animated: true } }).gif().toBuffer();
    assert.equal((await sharp(gif).metadata()).pages, 3);
    const still = await renderVariant(gif, variant({ width: 10, format: 'webp' }));
    assert.equal((await sharp(still.data).metadata()).pages ?? 1, 1);
    const moving = await renderVariant(gif, variant({ width: 10, animated: true }), DEFAULT_IMAGE_LIMITS, 'image/webp');
    assert.equal((await sharp(moving.data).metadata()).pages, 3);
    assert.deepEqual([moving.width, moving.height], [10, 10]);
    // 20x20 in one frame fits 1,000 pixels; in three frames it does not.
    await renderVariant(gif, variant({ width: 10 }), limits({ maxPixels: 1000 }));
    await refusedWith(renderVariant(gif, variant({ width: 10, animated: true }), limits({ maxPixels: 1000 })), 'E_TOO_LARGE', /20x20 pixels in 3 frames/);
  });

  it('rasterizes SVG only when it is allowed, and refuses what is not a raster image', async () => {
    const svg = Buffer.from('<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg" width="80" height="40"><rect width="80" height="40" fill="#09f"/></svg>');
    await refusedWith(renderVariant(svg, variant({ width: 20 })), 'E_INVALID_ARGUMENT', /image\/svg\+xml, which is rasterized only when SVG is allowed/, 'type');
    const drawn = await renderVariant(svg, variant({ width: 20, format: 'png' }), limits({ allowSvg: true }));
    assert.deepEqual([drawn.width, drawn.height], [20, 10]);
    await refusedWith(renderVariant(Buffer.from('%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n'), variant({ width: 20 })), 'E_INVALID_ARGUMENT', /found application\/pdf/, 'type');
    await refusedWith(renderVariant(Buffer.from('just some text, not an image'), variant({ width: 20 })), 'E_INVALID_ARGUMENT', /bytes of no known type/, 'type');
    const tiff = await solid(10, 10).tiff().toBuffer();
    await refusedWith(renderVariant(tiff, variant({ width: 20 })), 'E_INVALID_ARGUMENT', /found image\/tiff/, 'type');
  });

  it('refuses a damaged image with a 4xx error, not a crash', async () => {
    const jpeg = await solid(200, 200).jpeg().toBuffer();
    await refusedWith(renderVariant(jpeg.subarray(0, Math.floor(jpeg.length / 2)), variant({ width: 20 })), 'E_INVALID_ARGUMENT', /cannot be decoded as an image/, 'damaged');
  });
});
