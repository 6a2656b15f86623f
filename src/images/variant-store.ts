/**
 * Stored image variants: a variant is rendered on first request (or eagerly, see
 * `build`), kept as an internal file of the backend so every process serves it after
 * that, and bound to the original's SHA-256, so a replaced original never serves an old
 * rendition. Its internal file is `variants/<sha256 of the key>/<variant>.<format>` (the
 * format a request's `Accept` picks, or `other` for `auto`'s JPEG-or-PNG), holding a
 * header line (the key, the original's digest, the variant's settings, the type) and then
 * the image. Renders go through a bounded queue, and requests for the same rendition
 * share one render.
 */
import { createHash } from 'node:crypto';
import type { Driver } from '../core/contract.js';
import { BackgroundTasks } from '../core/concurrency.js';
import { BufferPool } from '../core/buffer-pool.js';
import { StorageError } from '../core/errors.js';
import { readAll } from '../core/body.js';
import type { ObjectInfo } from '../core/types.js';
import type { ResolvedImages } from './options.js';
import { imageError, inputTooLarge, renderVariant, type RenderedVariant } from './pipeline.js';
import { WorkQueue } from './queue.js';
import { RecentVariants, type RecentEntry, type RecentRendition } from './recent.js';
import { outputFormat, type Variant } from './variants.js';

/** A variant of an object, rendered or read back. */
export interface VariantImage {
  /** The original's key. */
  key: string;
  /** The variant's name. */
  variant: string;
  data: Buffer;
  contentType: string;
  width: number;
  height: number;
  /** The original's SHA-256 (or `etag:<ETag>` for an object stored without one), which the variant was made from. */
  source: string;
  /** A strong ETag for these bytes (bare, as ObjectInfo's: no quotes). */
  etag: string;
  /** True when read back from the backend; false when rendered for this call. */
  cached: boolean;
}

/** What `purge` did. */
export interface PurgeReport {
  /** Stored variants looked at. */
  scanned: number;
  /** Variants removed: of deleted or replaced originals, of variants no longer configured or changed, or all with `all`. */
  removed: number;
}

const AREA = 'variants/';
const MAGIC = 'stowage-variant 1\n';
const MAGIC_BYTES = Buffer.from(MAGIC);
/**
 * The originals' buffers kept between renders (see BufferPool): each at most 4 MiB (a
 * phone photo is 2 to 5 MB; a larger original gets a buffer of its own, left to the
 * garbage collector), 4 MiB per render the queue runs at once and 32 MiB in all.
 */
const POOLED_BYTES_PER_RENDER = 4 * 1024 * 1024;
const MAX_POOLED_BYTES = 32 * 1024 * 1024;

interface Header extends Omit<RecentEntry, 'data'> {
  key: string;
  /** The image's length and SHA-256: a file a crash left short or empty is never served (they are written as a cache, without fsync). */
  bytes: number;
  digest: string;
}

/** The digest of what decides a variant's pixels (not `eager`): a changed setting means a new rendition. */
function settingsOf(variant: Variant): string {
  const { eager: _eager, ...pixels } = variant;
  return createHash('sha256').update(JSON.stringify(pixels)).digest('hex').slice(0, 16);
}

/** What the variant's rendition is bound to: the original's SHA-256, or its ETag when it has none. */
export function sourceOf(info: ObjectInfo): string {
  return info.sha256 ?? `etag:${info.etag}`;
}

/** The folder of a key's variants. */
function folderOf(key: string): string {
  return `${AREA}${createHash('sha256').update(key).digest('hex')}/`;
}

/** The file-name suffixes a variant can be stored under: its format, or for `auto` each `Accept` may pick. */
function suffixesOf(variant: Variant): string[] {
  if (variant.format !== 'auto') return [variant.format];
  return variant.animated ? ['webp', 'avif'] : ['avif', 'webp', 'other'];
}

/** The suffix for a request: the format `Accept` picks, where alpha cannot change it; else `other`. */
function suffixFor(variant: Variant, accept: string | undefined): string {
  const format = outputFormat(variant, accept, false);
  return variant.format === 'auto' && format === 'jpeg' ? 'other' : format;
}

function sha256(data: Uint8Array): string {
  return createHash('sha256').update(data).digest('hex');
}

function encode(header: Omit<Header, 'bytes' | 'digest'>, data: Buffer): Buffer {
  const full: Header = { ...header, bytes: data.length, digest: sha256(data) };
  return Buffer.concat([Buffer.from(`${MAGIC}${JSON.stringify(full)}\n`), data]);
}

/** The header and image of a stored variant; undefined for bytes of another form, or short or damaged (treated as missing). */
function decode(file: Uint8Array): { header: Header; data: Buffer } | undefined {
  const bytes = Buffer.from(file.buffer, file.byteOffset, file.byteLength);
  if (!bytes.subarray(0, MAGIC_BYTES.length).equals(MAGIC_BYTES)) return undefined;
  const end = bytes.indexOf(0x0a, MAGIC_BYTES.length);
  if (end < 0) return undefined;
  let header: Header;
  try {
    header = JSON.parse(bytes.subarray(MAGIC_BYTES.length, end).toString('utf8')) as Header;
  } catch {
    return undefined;
  }
  const data = bytes.subarray(end + 1);
  return data.length === header.bytes && sha256(data) === header.digest ? { header, data } : undefined;
}

/** A rendition with its ETag: a digest of what decides its bytes (the original's, the settings, the type). */
function rendition(entry: RecentEntry): RecentRendition {
  return { ...entry, etag: createHash('sha256').update(`${entry.source}\0${entry.settings}\0${entry.contentType}`).digest('hex').slice(0, 32) };
}

/** A rendition as `get` returns it. */
function image(key: string, variant: Variant, entry: RecentRendition, cached: boolean): VariantImage {
  return { key, variant: variant.name, data: entry.data, contentType: entry.contentType, width: entry.width, height: entry.height, source: entry.source, etag: entry.etag, cached };
}

/** The variants of one storage's driver. */
export class VariantStore {
  readonly #driver: Driver;
  readonly #images: ResolvedImages;
  readonly #queue: WorkQueue;
  /** Renders in progress, by internal file and source: a second request waits for the first. */
  readonly #rendering = new Map<string, Promise<VariantImage>>();
  /** Renditions being stored: a request gets its rendition without waiting for the write (see `flush`). */
  readonly #storing = new BackgroundTasks();
  /** Renditions served lately, so a hot one is not read from the backend each time. */
  readonly #recent: RecentVariants;
  /** Each variant's settings digest, computed once: every request compares it. */
  readonly #settings: Map<string, string>;
  /** Buffers the originals are read into, reused from one render to the next (see BufferPool). */
  readonly #buffers: BufferPool;

  /** The variants made when their original is stored (`eager`). */
  readonly eagerNames: readonly string[];

  constructor(driver: Driver, images: ResolvedImages) {
    this.#driver = driver;
    this.#images = images;
    this.#queue = new WorkQueue(images.concurrency, images.queue);
    this.#recent = new RecentVariants(images.cacheBytes);
    this.#buffers = new BufferPool(Math.min(images.concurrency * POOLED_BYTES_PER_RENDER, MAX_POOLED_BYTES), POOLED_BYTES_PER_RENDER);
    this.#settings = new Map([...images.variants].map(([name, variant]) => [name, settingsOf(variant)]));
    this.eagerNames = [...images.variants.values()].filter((v) => v.eager).map((v) => v.name);
  }

  /** False when variants are turned off (`images: false`): no variant exists, and `purge` removes every stored one. */
  get enabled(): boolean {
    return this.#images.variants.size > 0;
  }

  /** The configured variants' names. */
  get names(): string[] {
    return [...this.#images.variants.keys()];
  }

  /** True when some variant is made when its original is stored. */
  get hasEager(): boolean {
    return this.eagerNames.length > 0;
  }

  /** Refuses a name that is not a configured variant (E_INVALID_ARGUMENT), or any when variants are off (E_UNSUPPORTED). */
  check(name: string): void {
    this.#variant(name);
  }

  #variant(name: string): Variant {
    if (!this.enabled) throw imageError('E_UNSUPPORTED', 'image variants are turned off for this storage (images: false, or STOWAGE_IMAGES=false)');
    const variant = this.#images.variants.get(name);
    if (!variant) throw imageError('E_INVALID_ARGUMENT', `there is no image variant ${JSON.stringify(name)}; the configured ones are ${this.names.join(', ')}`, { details: { reason: 'variant', variants: this.names } });
    return variant;
  }

  /**
   * The variant `name` of the object at `key` for a request accepting `accept`: read back
   * when stored for the object's current bytes, else rendered (in the queue), stored and
   * returned; the store goes on after the call resolves (`flush` waits for it). E_NOT_FOUND
   * for a missing original; the render's errors for one that is not an image, too large,
   * or damaged. A failure to store the rendition does not fail the call (the next request
   * renders again).
   */
  async get(key: string, name: string, accept?: string): Promise<VariantImage> {
    const variant = this.#variant(name);
    const info = await this.#driver.stat(key);
    const file = `${folderOf(key)}${name}.${suffixFor(variant, accept)}`;
    const [source, settings] = [sourceOf(info), this.#settings.get(name) as string];
    const recent = this.#recent.get(file, source, settings);
    if (recent) return image(key, variant, recent, true);
    if (this.#driver.capabilities.internalFiles) {
      const stored = await this.#driver.readInternal(file);
      const found = stored && decode(stored);
      if (found && found.header.source === source && found.header.settings === settings && found.header.key === key) {
        const entry = rendition({ ...found.header, data: found.data });
        this.#recent.set(file, entry);
        return image(key, variant, entry, true);
      }
    }
    const task = `${file}\0${source}`;
    let render = this.#rendering.get(task);
    if (!render) {
      render = this.#queue.run(() => this.#render(key, variant, file, accept)).finally(() => this.#rendering.delete(task));
      this.#rendering.set(task, render);
    }
    return render;
  }

  /** Reads the original (bounded), renders, stores. */
  async #render(key: string, variant: Variant, file: string, accept: string | undefined): Promise<VariantImage> {
    const { limits } = this.#images;
    // The original goes into a buffer of the pool when the driver can read it there (fs),
    // given back once sharp is done with it: sharp reads its input only until it resolves.
    let lent: Buffer | undefined;
    const bufferFor = (size: number) => (lent = this.#buffers.take(size));
    const original = await this.#driver.read(key, { bufferUpTo: limits.maxInputBytes, bufferFor });
    if (original.notModified) throw new StorageError('E_UNAVAILABLE', 'an unconditional read answered "not modified"');
    let rendered: RenderedVariant;
    try {
      if (original.info.size > limits.maxInputBytes) {
        original.stream.destroy();
        throw inputTooLarge(original.info.size, limits);
      }
      rendered = await renderVariant(original.bytes ?? (await readAll(original.stream)), variant, limits, accept);
    } finally {
      if (lent) this.#buffers.give(lent);
    }
    const entry = rendition({ source: sourceOf(original.info), settings: this.#settings.get(variant.name) as string, contentType: rendered.contentType, width: rendered.width, height: rendered.height, data: rendered.data });
    this.#recent.set(file, entry);
    // A cache's file: written without fsync, and checked by its length and digest when read.
    // The request does not wait for it: the rendition is in memory (recent) meanwhile.
    const { data, etag: _etag, ...described } = entry;
    if (this.#driver.capabilities.internalFiles) this.#storing.add(this.#driver.putInternal(file, encode({ key, ...described }, data), { cache: true }));
    return image(key, variant, entry, false);
  }

  /** Waits until every rendition rendered so far is stored in the backend (or failed to be: the next request renders again). */
  async flush(): Promise<void> {
    await this.#storing.settled();
  }

  /**
   * Renders and stores the variants `names` (default: every one) of the object at `key`
   * in each format a request can pick, unless stored already. Rejects with the first
   * failure (an original that is not an image: E_INVALID_ARGUMENT with reason `type`).
   */
  async build(key: string, names: readonly string[] = this.names): Promise<VariantImage[]> {
    const built: VariantImage[] = [];
    for (const variant of names.map((n) => this.#variant(n))) {
      for (const suffix of suffixesOf(variant)) {
        const accept = suffix === 'avif' || suffix === 'webp' ? `image/${suffix}` : undefined;
        built.push(await this.get(key, variant.name, accept));
      }
    }
    await this.flush();
    return built;
  }

  /** Removes every stored variant of these keys that the configured variants can have made. */
  async drop(keys: readonly string[]): Promise<void> {
    if (!this.#driver.capabilities.internalFiles || keys.length === 0) return;
    const variants = [...this.#images.variants.values()];
    const files = keys.flatMap((key) => variants.flatMap((v) => suffixesOf(v).map((suffix) => `${folderOf(key)}${v.name}.${suffix}`)));
    for (const file of files) this.#recent.drop(file);
    await this.flush(); // a rendition still being written would land after the delete
    await this.#driver.deleteInternal(files);
  }

  /**
   * Removes stored variants that can no longer be served: their original is gone or
   * replaced, their variant is no longer configured or was changed. With `all`, every
   * stored variant (they are made again on request). With `dryRun`, only counts what it
   * would remove.
   */
  async purge(opts: { all?: boolean; dryRun?: boolean } = {}): Promise<PurgeReport> {
    const report: PurgeReport = { scanned: 0, removed: 0 };
    if (!this.#driver.capabilities.internalFiles) return report;
    let cursor: string | undefined;
    do {
      const page = await this.#driver.listInternal(AREA, cursor);
      const doomed: string[] = [];
      for (const file of page.names) {
        report.scanned += 1;
        if (opts.all || !(await this.#servable(file))) doomed.push(file);
      }
      if (!opts.dryRun) await this.#driver.deleteInternal(doomed);
      report.removed += doomed.length;
      cursor = page.cursor;
    } while (cursor !== undefined);
    return report;
  }

  /** Whether a stored variant would still be served: its variant unchanged, its original there with the same bytes. */
  async #servable(file: string): Promise<boolean> {
    const stored = await this.#driver.readInternal(file);
    const found = stored && decode(stored);
    if (!found) return false;
    const name = file.slice(file.lastIndexOf('/') + 1, file.lastIndexOf('.'));
    const variant = this.#images.variants.get(name);
    if (!variant || found.header.settings !== this.#settings.get(name) || `${folderOf(found.header.key)}${file.slice(file.lastIndexOf('/') + 1)}` !== file) return false;
    const info = await this.#driver.stat(found.header.key).catch((err: unknown) => {
      if (err instanceof StorageError && (err.code === 'E_NOT_FOUND' || err.code === 'E_INVALID_KEY')) return undefined;
      throw err;
    });
    return info !== undefined && sourceOf(info) === found.header.source;
  }
}
