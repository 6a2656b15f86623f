/**
 * Renders one variant of an image with sharp, safely on hostile input. An upload is
 * anybody's bytes, so before a pixel is decoded:
 * - the input's size is bounded (`maxInputBytes`), since sharp reads it whole;
 * - its magic bytes must be a raster format Stowage renders (JPEG, PNG, WebP, GIF, AVIF):
 *   SVG is a program for a renderer (external references, entity expansion) and is only
 *   rasterized when `allowSvg` is set; PDF, TIFF, RAW and the rest are never;
 * - the header's dimensions, times the frames when the variant keeps every frame, must be
 *   within `maxPixels`: a decompression bomb (a few KB declaring a gigapixel) is refused
 *   from its header (sharp's own limit), which is what libvips then decodes by;
 * - libvips reads the header too, and its decoder must be the one the magic bytes named
 *   (except for JPEG and PNG, which only their own decoders take).
 * Then only the first frame is decoded unless the variant is animated; EXIF orientation
 * is applied; and nothing of the original's metadata is written (EXIF with its GPS
 * position, XMP, IPTC, ICC: sharp strips it unless told to keep it, and Stowage never
 * does). Each render has a time limit. sharp and file-type are loaded on first use.
 */
import type sharpFunction from 'sharp';
import type { Metadata, Sharp, SharpOptions } from 'sharp';
import type * as FileType from 'file-type';
import { StorageError, errorMessage, type ErrorCode, type StorageErrorInit } from '../core/errors.js';
import { lazyModule } from '../core/lazy.js';
import { FORMAT_TYPES, outputFormat, type OutputFormat, type Variant } from './variants.js';

// Required (sharp is CommonJS underneath) on the first render: importing Stowage never loads libvips.
const sharpModule = lazyModule<typeof sharpFunction>('sharp', 'image variants');

/** The limits every render keeps; see {@link DEFAULT_IMAGE_LIMITS}. */
export interface ImageLimits {
  /** The most pixels an original may have (width x height, times its frames for an animated variant). */
  maxPixels: number;
  /** The largest original, in bytes. */
  maxInputBytes: number;
  /** Rasterize SVG originals (only for SVG from trusted sources). */
  allowSvg: boolean;
  /** The longest one render may take, in seconds. */
  timeoutSeconds: number;
}

/** 50 megapixels, 50 MiB, no SVG, 30 s. */
export const DEFAULT_IMAGE_LIMITS: ImageLimits = { maxPixels: 50_000_000, maxInputBytes: 50 * 1024 * 1024, allowSvg: false, timeoutSeconds: 30 };

/** A rendered variant: its bytes and what they are. */
export interface RenderedVariant {
  data: Buffer;
  format: OutputFormat;
  contentType: string;
  width: number;
  height: number;
}

/** The raster formats Stowage renders, by the MIME type file-type finds, with the name sharp's metadata gives each. */
const RASTER: Record<string, string> = { 'image/jpeg': 'jpeg', 'image/png': 'png', 'image/webp': 'webp', 'image/gif': 'gif', 'image/avif': 'heif' };

/**
 * A StorageError whose message is also its public one: what is wrong with an original or
 * a variant's request names no key or path, and tells the client what to fix.
 */
export function imageError(code: ErrorCode, message: string, init: Omit<StorageErrorInit, 'publicMessage'> = {}): StorageError {
  return new StorageError(code, message, { ...init, publicMessage: `${message.charAt(0).toUpperCase()}${message.slice(1)}.` });
}

/** E_TOO_LARGE for an original of `size` bytes, over `limits.maxInputBytes`. */
export function inputTooLarge(size: number, limits: ImageLimits): StorageError {
  return imageError('E_TOO_LARGE', `the original is ${size} bytes, over the ${limits.maxInputBytes} bytes images may have`, { details: { maxSize: limits.maxInputBytes } });
}

/** The error for an original that is not an image Stowage renders (`details.reason` is `type`, so the service can answer 415). */
function notAnImage(found: string): StorageError {
  return imageError('E_INVALID_ARGUMENT', `the original is not an image Stowage makes variants of (found ${found}; JPEG, PNG, WebP, GIF and AVIF are)`, { details: { reason: 'type', found } });
}

/** Whether `input` reads as an SVG document: file-type has no signature for SVG, which is text. */
function looksLikeSvg(input: Buffer): boolean {
  const head = input.subarray(0, 4096).toString('utf8').replace(/^\uFEFF/, '');
  return /^\s*(<\?xml[^>]*>\s*)?(<!--[\s\S]*?-->\s*)*(<!DOCTYPE svg[^>]*>\s*)?<svg[\s>]/i.test(head);
}

// Imported once: a dynamic import resolves its specifier again on every call.
let fileType: Promise<typeof FileType> | undefined;

/** The format sharp will be given, by the input's magic bytes; throws for anything else. */
async function sniff(input: Buffer, allowSvg: boolean): Promise<string> {
  // Before file-type, which names an SVG with an XML declaration application/xml.
  if (looksLikeSvg(input)) {
    if (allowSvg) return 'svg';
    throw notAnImage('image/svg+xml, which is rasterized only when SVG is allowed');
  }
  const { fileTypeFromBuffer } = await (fileType ??= import('file-type'));
  const detected = await fileTypeFromBuffer(input);
  if (detected === undefined) throw notAnImage('bytes of no known type');
  const format = RASTER[detected.mime];
  if (format === undefined) throw notAnImage(detected.mime);
  return format;
}

/** A pixel count for messages: `51.2 megapixels`. */
function megapixels(pixels: number): string {
  return `${(pixels / 1e6).toFixed(1)} megapixels`;
}

/** sharp's error as a StorageError: the time limit is E_TIMEOUT, anything else a damaged image. */
function renderFailure(err: unknown, limits: ImageLimits): StorageError {
  const message = errorMessage(err);
  if (/timeout/i.test(message)) return imageError('E_TIMEOUT', `rendering the variant took more than ${limits.timeoutSeconds} s`, { cause: err });
  return imageError('E_INVALID_ARGUMENT', `the original cannot be decoded as an image: ${message}`, { cause: err, details: { reason: 'damaged' } });
}

/**
 * Renders `variant` of the image `input` within `limits`, in the format `outputFormat`
 * picks for `accept`. Throws E_TOO_LARGE for an original over a limit, E_INVALID_ARGUMENT
 * for one that is not an image Stowage renders or cannot be decoded, E_TIMEOUT past the
 * time limit; nothing is decoded before the checks of the module comment pass.
 */
export async function renderVariant(input: Buffer, variant: Variant, limits: ImageLimits = DEFAULT_IMAGE_LIMITS, accept?: string): Promise<RenderedVariant> {
  if (input.length > limits.maxInputBytes) {
    throw inputTooLarge(input.length, limits);
  }
  const sniffed = await sniff(input, limits.allowSvg);
  const sharp = sharpModule();
  const common: SharpOptions = { animated: variant.animated, sequentialRead: true, failOn: 'warning' };
  const header = () => checkedHeader(sharp(input, { ...common, limitInputPixels: false }), sniffed, variant, limits);
  // Alpha picks the format only for `auto` when Accept takes neither AVIF nor WebP, and JPEG has none.
  const byAlpha = sniffed !== 'jpeg' && outputFormat(variant, accept, false) !== outputFormat(variant, accept, true);
  // JPEG and PNG signatures begin with a byte outside ASCII, which only their own decoders
  // take (SVG's, above all, wants 24 ASCII bytes first): their header is read only when
  // alpha picks the format. Any other format's is read first, to check the decoder.
  const checked = byAlpha || (sniffed !== 'jpeg' && sniffed !== 'png') ? await header() : undefined;
  const format = outputFormat(variant, accept, checked?.hasAlpha ?? false);
  try {
    // sharp's own pixel limit is checked from the header before a pixel is decoded; its
    // height counts every frame when animated, as maxPixels does.
    return await render(sharp(input, { ...common, limitInputPixels: limits.maxPixels }), variant, format, limits);
  } catch (err) {
    // The header says what was over the limit (and throws E_TOO_LARGE saying so).
    if (checked === undefined && /pixel limit/i.test(errorMessage(err))) await header();
    throw renderFailure(err, limits);
  }
}

/**
 * The original's header, read by libvips: E_INVALID_ARGUMENT when its decoder is not the
 * one the magic bytes named, E_TOO_LARGE when it declares more than `limits.maxPixels`.
 */
async function checkedHeader(image: Sharp, sniffed: string, variant: Variant, limits: ImageLimits): Promise<Metadata> {
  let meta: Metadata;
  try {
    meta = await image.metadata();
  } catch (err) {
    throw renderFailure(err, limits);
  }
  // libvips picks its loader from the bytes too: both must agree, or the bytes are not what they claim.
  if (meta.format !== sniffed) throw notAnImage(`${sniffed} by its signature but ${meta.format} to the decoder`);
  const frames = variant.animated ? (meta.pages ?? 1) : 1;
  const frameHeight = variant.animated ? (meta.pageHeight ?? meta.height ?? 0) : (meta.height ?? 0);
  const pixels = (meta.width ?? 0) * frameHeight * frames;
  if (pixels > limits.maxPixels) {
    throw imageError('E_TOO_LARGE', `the original declares ${meta.width}x${frameHeight} pixels${frames > 1 ? ` in ${frames} frames` : ''} (${megapixels(pixels)}), over the limit of ${megapixels(limits.maxPixels)}`, { details: { maxPixels: limits.maxPixels } });
  }
  return meta;
}

/** Orients, resizes and encodes `image` as `format`, within the time limit. */
async function render(image: Sharp, variant: Variant, format: OutputFormat, limits: ImageLimits): Promise<RenderedVariant> {
  const quality = variant.quality === undefined ? {} : { quality: variant.quality };
  image
    .autoOrient()
    .resize({ ...(variant.width === undefined ? {} : { width: variant.width }), ...(variant.height === undefined ? {} : { height: variant.height }), fit: variant.fit, withoutEnlargement: true })
    .timeout({ seconds: limits.timeoutSeconds });
  const encoded = format === 'avif' ? image.avif(quality) : format === 'webp' ? image.webp(quality) : format === 'png' ? image.png(quality) : image.jpeg({ ...quality, mozjpeg: true });
  const { data, info } = await encoded.toBuffer({ resolveWithObject: true });
  return { data, format, contentType: FORMAT_TYPES[format], width: info.width, height: info.pageHeight ?? info.height };
}
