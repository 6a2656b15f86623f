/** Image variant configuration: defaults, the checks that name what is wrong, and the format picked for a request's Accept. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isStorageError } from '../../src/index.js';
import { DEFAULT_VARIANTS, outputFormat, parseVariants, type Variant } from '../../src/images/variants.js';

function refused(config: unknown, pattern: RegExp): void {
  assert.throws(
    () => parseVariants(config as string, 'STOWAGE_IMAGE_VARIANTS'),
    (err: unknown) => isStorageError(err, 'E_CONFIG_INVALID') && /STOWAGE_IMAGE_VARIANTS/.test(err.message) && pattern.test(err.message),
  );
}

describe('image variant configuration', () => {
  it('has a 200x200 cropped thumbnail when none are configured', () => {
    const variants = parseVariants(undefined);
    assert.deepEqual([...variants.keys()], Object.keys(DEFAULT_VARIANTS));
    assert.deepEqual(variants.get('thumb'), { name: 'thumb', width: 200, height: 200, fit: 'cover', format: 'auto', animated: false, eager: false });
  });

  it('reads the JSON of the environment, with defaults for what a variant leaves out', () => {
    const variants = parseVariants('{"medium": {"width": 1024}, "card": {"width": 400, "height": 300, "fit": "cover", "format": "webp", "quality": 70, "eager": true}}');
    assert.deepEqual(variants.get('medium'), { name: 'medium', width: 1024, fit: 'inside', format: 'auto', animated: false, eager: false });
    assert.deepEqual(variants.get('card'), { name: 'card', width: 400, height: 300, fit: 'cover', format: 'webp', quality: 70, animated: false, eager: true });
  });

  it('refuses what is not a variant, naming the variant and the field', () => {
    refused('{"thumb": ', /not valid JSON/);
    refused('[]', /must be an object of names/);
    refused('{}', /no variant is given/);
    refused({ 'Big Thumb': { width: 10 } }, /the name "Big Thumb"/);
    refused({ thumb: 200 }, /variant "thumb" must be an object/);
    refused({ thumb: { width: 200, crop: true } }, /variant "thumb" has unknown field\(s\) crop/);
    refused({ thumb: { fit: 'cover' } }, /variant "thumb" needs a width, a height, or both/);
    refused({ thumb: { width: 0 } }, /variant "thumb": width must be a whole number from 1 to 8192 \(got 0\)/);
    refused({ thumb: { width: 9000 } }, /from 1 to 8192 \(got 9000\)/);
    refused({ thumb: { width: 20.5 } }, /got 20.5/);
    refused({ thumb: { width: 200, fit: 'stretch' } }, /variant "thumb": fit must be one of cover, contain, fill, inside, outside/);
    refused({ thumb: { width: 200, format: 'gif' } }, /format must be one of auto, avif, webp, jpeg, png/);
    refused({ thumb: { width: 200, quality: 101 } }, /quality must be a whole number from 1 to 100/);
    refused({ thumb: { width: 200, animated: 'yes' } }, /animated must be true or false/);
    refused({ thumb: { width: 200, animated: true, format: 'jpeg' } }, /animated, which jpeg cannot hold/);
  });

  describe('the format of an auto variant', () => {
    const auto = parseVariants({ v: { width: 10 } }).get('v') as Variant;
    const animated = parseVariants({ v: { width: 10, animated: true } }).get('v') as Variant;

    it('is AVIF, then WebP, when the request accepts them, else JPEG, or PNG for an image with alpha', () => {
      assert.equal(outputFormat(auto, 'image/avif,image/webp,*/*;q=0.8', false), 'avif');
      assert.equal(outputFormat(auto, 'image/webp,*/*', false), 'webp');
      assert.equal(outputFormat(auto, '*/*', false), 'jpeg');
      assert.equal(outputFormat(auto, undefined, true), 'png');
    });

    it('takes q=0 as a refusal, and WebP first for an animated variant', () => {
      assert.equal(outputFormat(auto, 'image/avif;q=0, image/webp;q=0.5', false), 'webp');
      assert.equal(outputFormat(animated, 'image/avif,image/webp', false), 'webp');
      assert.equal(outputFormat(animated, undefined, false), 'webp');
    });

    it('is the variant’s own when it names one, whatever is accepted', () => {
      const png = parseVariants({ v: { width: 10, format: 'png' } }).get('v') as Variant;
      assert.equal(outputFormat(png, 'image/avif', false), 'png');
    });
  });
});
