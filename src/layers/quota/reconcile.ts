/**
 * Reconcile: recompute every quota's usage from a listing of what the backend holds,
 * report each counter's drift from what the store counted, and (unless a dry run) set
 * the counters to what was listed. It is the repair for what counting on the write path
 * cannot see: uploads that went straight to S3 through a presigned link or form, objects
 * written around Stowage, a store that was lost, or writes let through while a store was
 * down (failing open). One pass over the listing (O(objects)), in pages of 1,000, with
 * memory for one counter per quota folder, never per object.
 *
 * Writes that run during the listing may or may not be in it; a counter they touch can be
 * off by those writes after the repair. Run it when writes are quiet, or twice: a second
 * run reports the drift left (see the README).
 */
import type { Driver } from '../../core/contract.js';
import { StorageError } from '../../core/errors.js';
import type { QuotaControl } from './control.js';
import { counterId, parseCounterId } from './store.js';

/** One counter whose count differed from the listing. */
export interface QuotaDrift {
  pattern: string;
  prefix: string;
  /** What the store had counted. */
  counted: { bytes: number; objects: number };
  /** What the listing found. */
  listed: { bytes: number; objects: number };
}

/** What `reconcile` found and did. */
export interface ReconcileReport {
  /** Objects listed. */
  objects: number;
  /** Counters compared (every folder of every quota the listing or the store knows). */
  counters: number;
  /** The counters that differed. */
  drift: QuotaDrift[];
  /** Whether the counters were set to the listing (false for a dry run). */
  repaired: boolean;
  seconds: number;
}

/** The prefixes to list so that every quota's keys are seen once: `""` when a quota covers the whole storage. */
function listingRoots(patterns: readonly string[]): string[] {
  const roots = patterns.map((p) => {
    const segments = p === '' ? [] : p.slice(0, -1).split('/');
    const fixed = segments.slice(0, segments.includes('*') ? segments.indexOf('*') : segments.length);
    return fixed.length === 0 ? '' : `${fixed.join('/')}/`;
  });
  // A root inside another is listed with it.
  return [...new Set(roots)].filter((root, _, all) => !all.some((other) => other !== root && root.startsWith(other))).sort();
}

/**
 * Recomputes the usage of every quota of `control` from a listing of `driver` (the
 * driver below the quota layer), and repairs the counters unless `dryRun`.
 */
export async function reconcileQuotas(driver: Driver, control: QuotaControl, opts: { dryRun?: boolean; signal?: AbortSignal } = {}): Promise<ReconcileReport> {
  const started = performance.now();
  const store = await control.open();
  if (store === undefined) throw new StorageError('E_UNAVAILABLE', 'the quota store is unavailable: reconcile needs it');
  const listed = new Map<string, { bytes: number; objects: number }>();
  // With an index, the listing rebuilds it too: every metered key and its size.
  const index = control.indexed ? new Map<string, number>() : undefined;
  let objects = 0;
  for (const prefix of listingRoots(control.matcher.patterns)) {
    let cursor: string | undefined;
    do {
      opts.signal?.throwIfAborted();
      const page = await driver.list({ prefix, limit: 1000, details: false, ...(cursor === undefined ? {} : { cursor }), signal: opts.signal });
      for (const item of page.objects) {
        objects += 1;
        const quotas = control.matcher.match(item.key);
        if (index !== undefined && quotas.length > 0) index.set(item.key, item.size);
        for (const quota of quotas) {
          const usage = listed.get(quota.counter) ?? { bytes: 0, objects: 0 };
          usage.bytes += item.size;
          usage.objects += 1;
          listed.set(quota.counter, usage);
        }
      }
      cursor = page.cursor;
    } while (cursor !== undefined);
  }
  const counted = await store.read();
  const drift: QuotaDrift[] = [];
  const ids = new Set([...listed.keys(), ...[...counted.keys()].filter((id) => control.matcher.limitOf(parseCounterId(id).pattern) !== undefined)]);
  for (const id of ids) {
    const was = counted.get(id) ?? { bytes: 0, objects: 0 };
    const now = listed.get(id) ?? { bytes: 0, objects: 0 };
    if (was.bytes === now.bytes && was.objects === now.objects) continue;
    const { pattern, prefix } = parseCounterId(id);
    drift.push({ pattern, prefix, counted: { bytes: was.bytes, objects: was.objects }, listed: now });
  }
  drift.sort((a, b) => (a.pattern + a.prefix < b.pattern + b.prefix ? -1 : 1));
  const repaired = !opts.dryRun && drift.length > 0;
  if (index !== undefined && !opts.dryRun) await store.replaceIndex(index);
  if (repaired) {
    await store.reset(listed, control.matcher.patterns.map((p) => counterId(p, '')));
    control.observe(await store.read(drift.map((d) => counterId(d.pattern, d.prefix))));
  }
  return { objects, counters: ids.size, drift, repaired, seconds: (performance.now() - started) / 1000 };
}
