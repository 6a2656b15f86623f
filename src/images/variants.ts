/**
 * Image variants: the named renditions of an image (a thumbnail, a medium size) that
 * Stowage makes from an original, configured once (`STOWAGE_IMAGE_VARIANTS`, JSON, or
 * `images: { variants }` in code). Only named variants exist: a size never comes from a
 * URL, since free-form sizes let any client make the service render without bound.
 * This module holds the configuration and its checks, and the choice of an output format
 * for a request's `Accept`; pipeline.ts renders, queue.ts bounds the work.
 */
import { StorageError } from '../core/errors.js';

/** How an image is fitted into a variant's box (sharp's `fit`). */
export const FITS = ['cover', 'contain', 'fill', 'inside', 'outside'] as const;
/** A variant's output format; `auto` picks by the request's `Accept` (AVIF, then WebP, else JPEG, or PNG for an image with alpha). */
export const VARIANT_FORMATS = ['auto', 'avif', 'webp', 'jpeg', 'png'] as const;
/** The formats a variant is written in. */
export type OutputFormat = Exclude<(typeof VARIANT_FORMATS)[number], 'auto'>;

/** One variant, as configured. */
export interface VariantSpec {
  /** The box's width in pixels (1 to 8192); with only a height, the width follows the aspect ratio. */
  width?: number;
  /** The box's height in pixels (1 to 8192); with only a width, the height follows the aspect ratio. */
  height?: number;
  /** How the image fits the box (default `inside`: never cropped, never larger than the box). */
  fit?: (typeof FITS)[number];
  /** The output format (default `auto`). */
  format?: (typeof VARIANT_FORMATS)[number];
  /** The encoder's quality, 1 to 100 (default: the encoder's, 80 for JPEG and WebP, 50 for AVIF). */
  quality?: number;
  /** Keep every frame of an animated original (WebP, AVIF or GIF out); by default only the first frame is rendered. */
  animated?: boolean;
  /** Make it when the original is stored, rather than on its first request. */
  eager?: boolean;
}

/** Variants by name. */
export type VariantSpecs = Record<string, VariantSpec>;

/** A variant checked, with its defaults applied. */
export interface Variant {
  name: string;
  width?: number;
  height?: number;
  fit: (typeof FITS)[number];
  format: (typeof VARIANT_FORMATS)[number];
  quality?: number;
  animated: boolean;
  eager: boolean;
}

/** The variants that exist when none are configured: a 200x200 thumbnail, cropped to fill it. */
export const DEFAULT_VARIANTS: VariantSpecs = { thumb: { width: 200, height: 200, fit: 'cover', format: 'auto' } };

/** A variant's name: lower-case letters, digits, `-` and `_`, up to 32 characters, as it appears in URLs. */
const NAME = /^[a-z0-9][a-z0-9_-]{0,31}$/;
/** The largest box side: larger variants are not thumbnails, and would let one request cost seconds. */
const MAX_SIDE = 8192;
const FIELDS = new Set(['width', 'height', 'fit', 'format', 'quality', 'animated', 'eager']);

function invalid(message: string, source: string): StorageError {
  return new StorageError('E_CONFIG_INVALID', `invalid image variants${source ? ` (${source})` : ''}: ${message}`);
}

function whole(value: unknown, min: number, max: number, what: string, source: string): number | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) throw invalid(`${what} must be a whole number from ${min} to ${max} (got ${JSON.stringify(value)})`, source);
  return value;
}

function flag(value: unknown, what: string, source: string): boolean {
  if (value === undefined) return false;
  if (typeof value !== 'boolean') throw invalid(`${what} must be true or false (got ${JSON.stringify(value)})`, source);
  return value;
}

function oneOf<T extends string>(value: unknown, allowed: readonly T[], fallback: T, what: string, source: string): T {
  if (value === undefined) return fallback;
  if (typeof value !== 'string' || !(allowed as readonly string[]).includes(value)) throw invalid(`${what} must be one of ${allowed.join(', ')} (got ${JSON.stringify(value)})`, source);
  return value as T;
}

/** One variant checked: E_CONFIG_INVALID names the variant and the field at fault. */
function checkVariant(name: string, spec: unknown, source: string): Variant {
  if (!NAME.test(name)) throw invalid(`the name ${JSON.stringify(name)} must be 1 to 32 of a-z, 0-9, "-" and "_", starting with a letter or digit`, source);
  if (spec === null || typeof spec !== 'object' || Array.isArray(spec)) throw invalid(`variant "${name}" must be an object such as {"width": 200, "height": 200, "fit": "cover"}`, source);
  const unknown = Object.keys(spec).filter((k) => !FIELDS.has(k));
  if (unknown.length > 0) throw invalid(`variant "${name}" has unknown field(s) ${unknown.join(', ')} (known: ${[...FIELDS].join(', ')})`, source);
  const s = spec as Record<string, unknown>;
  const width = whole(s.width, 1, MAX_SIDE, `variant "${name}": width`, source);
  const height = whole(s.height, 1, MAX_SIDE, `variant "${name}": height`, source);
  if (width === undefined && height === undefined) throw invalid(`variant "${name}" needs a width, a height, or both`, source);
  const format = oneOf(s.format, VARIANT_FORMATS, 'auto', `variant "${name}": format`, source);
  const animated = flag(s.animated, `variant "${name}": animated`, source);
  if (animated && (format === 'jpeg' || format === 'png')) throw invalid(`variant "${name}" is animated, which ${format} cannot hold: use webp, avif or auto`, source);
  return {
    name,
    ...(width === undefined ? {} : { width }),
    ...(height === undefined ? {} : { height }),
    fit: oneOf(s.fit, FITS, 'inside', `variant "${name}": fit`, source),
    format,
    ...(s.quality === undefined ? {} : { quality: whole(s.quality, 1, 100, `variant "${name}": quality`, source) }),
    animated,
    eager: flag(s.eager, `variant "${name}": eager`, source),
  };
}

/**
 * The variants of a configuration, checked: an object of specs, or its JSON text (as
 * `STOWAGE_IMAGE_VARIANTS` holds it). `source` names where it came from in errors.
 * Undefined gives {@link DEFAULT_VARIANTS}.
 */
export function parseVariants(config: VariantSpecs | string | undefined, source = ''): Map<string, Variant> {
  let specs: unknown = config ?? DEFAULT_VARIANTS;
  if (typeof specs === 'string') {
    try {
      specs = JSON.parse(specs);
    } catch (err) {
      throw invalid(`not valid JSON (${(err as Error).message})`, source);
    }
  }
  if (specs === null || typeof specs !== 'object' || Array.isArray(specs)) throw invalid('variants must be an object of names, e.g. {"thumb": {"width": 200, "height": 200, "fit": "cover"}}', source);
  const variants = new Map(Object.entries(specs).map(([name, spec]) => [name, checkVariant(name, spec, source)] as const));
  if (variants.size === 0) throw invalid('no variant is given', source);
  return variants;
}

/** The MIME type of each output format. */
export const FORMAT_TYPES: Record<OutputFormat, string> = { avif: 'image/avif', webp: 'image/webp', jpeg: 'image/jpeg', png: 'image/png' };

/**
 * The format a variant is written in for a request that accepts `accept` (an HTTP
 * `Accept` header; absent for a library call): the variant's own, or for `auto` AVIF or
 * WebP when accepted (WebP first for an animated variant: AVIF animation is little
 * supported), else PNG for an image with alpha and JPEG otherwise. `q=0` refuses a type.
 */
export function outputFormat(variant: Variant, accept: string | undefined, hasAlpha: boolean): OutputFormat {
  if (variant.format !== 'auto') return variant.format;
  const accepted = acceptedTypes(accept ?? '');
  const preference: OutputFormat[] = variant.animated ? ['webp', 'avif'] : ['avif', 'webp'];
  for (const format of preference) if (accepted.has(FORMAT_TYPES[format])) return format;
  if (variant.animated) return 'webp';
  return hasAlpha ? 'png' : 'jpeg';
}

/** The image types an `Accept` header names with a weight above zero (wildcards do not count: a browser's `*\/*` is not a promise to decode AVIF). */
function acceptedTypes(accept: string): Set<string> {
  const types = new Set<string>();
  for (const part of accept.split(',')) {
    const [type, ...params] = part.trim().toLowerCase().split(';');
    const q = params.map((p) => p.trim()).find((p) => p.startsWith('q='));
    if (type && (q === undefined || Number(q.slice(2)) > 0)) types.add(type.trim());
  }
  return types;
}
