/**
 * The image options of a Storage (`images` in its options; `STOWAGE_IMAGE_*` in the
 * environment), checked once when the storage is made so that a bad variant or limit
 * fails at start-up, not on the first thumbnail. Loading this module loads neither sharp
 * nor file-type.
 */
import { availableParallelism } from 'node:os';
import { StorageError } from '../core/errors.js';
import { DEFAULT_IMAGE_LIMITS, type ImageLimits } from './pipeline.js';
import { parseVariants, type Variant, type VariantSpecs } from './variants.js';

/** What a Storage does with images: which variants exist, and the limits of making them. */
export interface ImagesOptions {
  /** Named variants, as an object or its JSON text (default: `thumb`, 200x200 cover, format by `Accept`). */
  variants?: VariantSpecs | string;
  /** The most pixels an original may have (default 50,000,000). */
  maxPixels?: number;
  /** The largest original, in bytes (default 50 MiB). */
  maxInputBytes?: number;
  /** Rasterize SVG originals: only when every SVG comes from a trusted source (default false). */
  allowSvg?: boolean;
  /** The longest one render may take, in seconds (default 30). */
  timeoutSeconds?: number;
  /** Renders at a time (default: twice the number of CPUs, at least 2). */
  concurrency?: number;
  /** Renders that may wait for a turn before more are refused with a retryable E_UNAVAILABLE (default 256). */
  queue?: number;
  /** Memory for the renditions served lately (up to 1 MiB each), in bytes; 0 turns it off (default 32 MiB). */
  cacheBytes?: number;
}

/** The checked options. */
export interface ResolvedImages {
  variants: Map<string, Variant>;
  limits: ImageLimits;
  concurrency: number;
  queue: number;
  cacheBytes: number;
}

/** Memory for recent renditions, by default: as much as the fs driver's small-object cache. */
const DEFAULT_CACHE_BYTES = 32 * 1024 * 1024;

/** Renders waiting for a turn, by default: each waits as a promise only (the original is read once its turn comes). */
const DEFAULT_QUEUE = 256;

function positive(value: number | undefined, fallback: number, what: string, max = Number.MAX_SAFE_INTEGER): number {
  if (value === undefined) return fallback;
  if (!Number.isInteger(value) || value < 1 || value > max) throw new StorageError('E_CONFIG_INVALID', `images: ${what} must be a whole number from 1 to ${max} (got ${String(value)})`);
  return value;
}

/**
 * Checks the options; E_CONFIG_INVALID names the field (or the variant and its field).
 * `false` turns variants off: none is configured.
 */
export function resolveImages(options: ImagesOptions | false = {}): ResolvedImages {
  if (options === false) return { variants: new Map(), limits: DEFAULT_IMAGE_LIMITS, concurrency: 1, queue: 0, cacheBytes: 0 };
  if (options === null || typeof options !== 'object') throw new StorageError('E_CONFIG_INVALID', 'images must be an object of options, or false to turn variants off');
  if (options.allowSvg !== undefined && typeof options.allowSvg !== 'boolean') throw new StorageError('E_CONFIG_INVALID', `images: allowSvg must be true or false (got ${JSON.stringify(options.allowSvg)})`);
  return {
    variants: parseVariants(options.variants, 'images.variants'),
    limits: {
      maxPixels: positive(options.maxPixels, DEFAULT_IMAGE_LIMITS.maxPixels, 'maxPixels'),
      maxInputBytes: positive(options.maxInputBytes, DEFAULT_IMAGE_LIMITS.maxInputBytes, 'maxInputBytes'),
      allowSvg: options.allowSvg ?? DEFAULT_IMAGE_LIMITS.allowSvg,
      timeoutSeconds: positive(options.timeoutSeconds, DEFAULT_IMAGE_LIMITS.timeoutSeconds, 'timeoutSeconds', 3600),
    },
    // Twice the CPUs: a render also waits (reading the original, storing the variant, libvips
    // handing work between its threads), and the next one fills that time.
    concurrency: positive(options.concurrency, Math.max(2, 2 * availableParallelism()), 'concurrency', 1024),
    queue: options.queue === 0 ? 0 : positive(options.queue, DEFAULT_QUEUE, 'queue', 1_000_000),
    cacheBytes: options.cacheBytes === 0 ? 0 : positive(options.cacheBytes, DEFAULT_CACHE_BYTES, 'cacheBytes'),
  };
}
