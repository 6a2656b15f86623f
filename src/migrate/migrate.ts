/**
 * Copying every object under a prefix from one storage to another, with content type,
 * metadata and SHA-256, so that a migration can be stopped at any point (even by
 * SIGKILL) and run again until the target holds exactly the source's objects.
 *
 * - Objects already at the target with the same size and digest are skipped, so a run
 *   again is cheap and never duplicates; a checkpoint file spares even those checks.
 *   The target is listed once beside the source, so only keys it holds with the same
 *   size cost a request of their own.
 * - Each copy streams (memory stays bounded whatever the object size), or between two
 *   S3 locations of one service is made by the service itself; the target write is
 *   atomic either way, so a killed run leaves whole objects or none.
 * - The source's stored digest is checked while copying; `verify` re-reads the target
 *   and copies again on a mismatch; `deleteSource` deletes only verified copies.
 */
import { createHash } from 'node:crypto';
import { forEachConcurrently } from '../core/concurrency.js';
import { compareKeys } from '../core/keys.js';
import { StorageError } from '../core/errors.js';
import { statOrUndefined } from '../core/objects.js';
import type { Storage } from '../core/storage.js';
import type { ObjectInfo } from '../core/types.js';
import { isUncreatedRoot } from '../drivers/fs/errors.js';
import { Checkpoint, type CheckpointIdentity } from './checkpoint.js';
import type { OnProgress } from '../core/progress.js';

/** Options of {@link migrate}. */
export interface MigrateOptions {
  /** Only objects whose keys start with this (default: all). */
  prefix?: string;
  /** Objects copied at once (default 8). */
  concurrency?: number;
  /** Decide and report, but write nothing. */
  dryRun?: boolean;
  /** Re-read every target object and compare digests; a mismatch is copied again. */
  verify?: boolean;
  /** Delete each source object once its copy is verified (implies `verify`). */
  deleteSource?: boolean;
  /** A checkpoint file: objects recorded there are not checked again when the run is repeated. */
  checkpoint?: { path: string; identity: Omit<CheckpointIdentity, 'prefix'> };
  /** Called after each object. */
  onProgress?: (progress: MigrateProgress) => void;
  /** Stops taking new objects when aborted; objects in flight finish. */
  signal?: AbortSignal;
}

/** Running totals, passed to `onProgress`. */
export interface MigrateProgress {
  objects: number;
  bytes: number;
  copied: number;
  skipped: number;
  failed: number;
}

/** What a migration did (or, in a dry run, would do). */
export interface MigrateReport {
  dryRun: boolean;
  /** Objects written to the target (in a dry run: that would be). */
  copied: number;
  /** Objects already at the target with the same size and digest. */
  skipped: number;
  /** Target objects re-read and found to match (with `verify`). */
  verified: number;
  /** Target objects that did not match on re-reading and were copied again. */
  repaired: string[];
  /** Source objects deleted (with `deleteSource`). */
  deleted: number;
  /** Objects that could not be migrated, with the reason. */
  failed: { key: string; reason: string }[];
  /** Of the copies, how many the S3 service made itself (same service and keys: the bytes stayed there). */
  serverSide: number;
  /** Bytes copied. */
  bytes: number;
  durationMs: number;
}

/** Errors that doom every other object too: stop instead of failing them one by one. */
const FATAL = new Set(['E_BUCKET_NOT_FOUND', 'E_CONFIG_INVALID', 'E_QUOTA_EXCEEDED', 'E_ACCESS_DENIED']);
/** Copies of one object before a target that keeps reading back wrong is given up on. */
const COPY_ATTEMPTS = 3;

/** Hex SHA-256 and size of an object's bytes, read back from the storage; `onProgress` follows the read. */
export async function digestOf(storage: Storage, key: string, onProgress?: OnProgress): Promise<{ sha256: string; size: number }> {
  const { stream } = await storage.getStream(key, { onProgress });
  const hash = createHash('sha256');
  let size = 0;
  for await (const chunk of stream as AsyncIterable<Uint8Array>) {
    hash.update(chunk);
    size += chunk.byteLength;
  }
  return { sha256: hash.digest('hex'), size };
}

/** The target's objects; a local folder that does not exist yet holds none (the first copy creates it). */
async function* targetObjects(to: Storage, prefix: string): AsyncGenerator<ObjectInfo> {
  try {
    yield* to.listAll({ prefix, details: false });
  } catch (err) {
    if (isUncreatedRoot(err)) return;
    throw err;
  }
}

/** A source object and the size of the target's object at its key (undefined: there is none). */
interface Pair {
  source: ObjectInfo;
  targetSize: number | undefined;
}

/**
 * Pairs each source object with the target's object at its key by walking both
 * listings side by side (both are in byte order), so only keys the target holds with
 * the same size need a request of their own, and memory stays bounded.
 */
async function* pairWithTarget(source: AsyncIterable<ObjectInfo>, target: AsyncIterator<ObjectInfo>): AsyncGenerator<Pair> {
  let next = await target.next();
  for await (const info of source) {
    while (!next.done && compareKeys(next.value.key, info.key) < 0) next = await target.next();
    yield { source: info, targetSize: !next.done && next.value.key === info.key ? next.value.size : undefined };
  }
}

/** Copies every object under `prefix` from `from` to `to`; see the module comment. */
export async function migrate(from: Storage, to: Storage, opts: MigrateOptions = {}): Promise<MigrateReport> {
  const started = performance.now();
  const concurrency = opts.concurrency ?? 8;
  if (!Number.isInteger(concurrency) || concurrency < 1 || concurrency > 256) throw new StorageError('E_INVALID_ARGUMENT', 'concurrency must be a whole number from 1 to 256');
  const verify = opts.verify === true || opts.deleteSource === true;
  const dryRun = opts.dryRun === true;
  const prefix = opts.prefix ?? '';
  const report: MigrateReport = { dryRun, copied: 0, skipped: 0, verified: 0, repaired: [], deleted: 0, failed: [], serverSide: 0, bytes: 0, durationMs: 0 };
  const checkpoint = opts.checkpoint && !dryRun ? await Checkpoint.open(opts.checkpoint.path, { ...opts.checkpoint.identity, prefix }) : undefined;
  let objects = 0;
  let fatal: StorageError | undefined;
  // Bytes of copies still under way, so progress moves within large objects too.
  let moving = 0;
  const tell = () => opts.onProgress?.({ objects, bytes: report.bytes + moving, copied: report.copied, skipped: report.skipped, failed: report.failed.length });

  const copy = async (source: ObjectInfo): Promise<string> => {
    let seen = 0;
    // Followed only when someone listens: otherwise every chunk would pay for the bookkeeping.
    const onProgress: OnProgress | undefined =
      opts.onProgress &&
      (({ bytes }) => {
        moving += bytes - seen;
        seen = bytes;
        tell();
      });
    try {
      const written = await to.copyFrom(from, source.key, source.key, { onProgress });
      report.bytes += written.size;
      if (written.copiedBy === 'service') report.serverSide++;
      return written.sha256 as string;
    } finally {
      moving -= seen;
    }
  };

  const migrateOne = async ({ source, targetSize }: Pair): Promise<void> => {
    if (!verify && checkpoint?.has(source.key, source.size, source.sha256)) {
      report.skipped++;
      return;
    }
    // Only a target object of the same size can already be the copy: ask it for its digest.
    const target = targetSize === source.size ? await statOrUndefined(to, source.key) : undefined;
    let digest = source.sha256;
    if (target && target.size === source.size && digest === undefined && target.sha256 !== undefined) {
      // Files put in place by other tools have no stored digest: hash them to compare.
      digest = (await digestOf(from, source.key)).sha256;
    }
    const present = target !== undefined && target.size === source.size && digest !== undefined && target.sha256 === digest;
    if (dryRun) {
      if (present) report.skipped++;
      else report.copied++;
      return;
    }
    if (present) report.skipped++;
    else {
      digest = await copy(source);
      report.copied++;
    }
    if (verify) {
      for (let attempt = 1; ; attempt++) {
        const reread = await digestOf(to, source.key);
        if (reread.sha256 === digest && reread.size === source.size) break;
        if (attempt === COPY_ATTEMPTS) throw new StorageError('E_CHECKSUM_MISMATCH', `the target still reads back wrong after ${COPY_ATTEMPTS} copies`);
        if (attempt === 1) report.repaired.push(source.key);
        digest = await copy(source);
      }
      report.verified++;
    }
    checkpoint?.record(source.key, source.size, digest as string);
    if (opts.deleteSource) {
      await from.delete(source.key);
      report.deleted++;
    }
  };

  const step = async (pair: Pair): Promise<void> => {
    const { source } = pair;
    try {
      await migrateOne(pair);
    } catch (err) {
      const reason = err instanceof Error ? err.message : String(err);
      report.failed.push({ key: source.key, reason });
      if (err instanceof StorageError && FATAL.has(err.code)) fatal = err;
    }
    objects++;
    tell();
  };
  try {
    const targetListing = targetObjects(to, prefix)[Symbol.asyncIterator]();
    await forEachConcurrently(pairWithTarget(from.listAll({ prefix }), targetListing), concurrency, step, () => fatal !== undefined || opts.signal?.aborted === true);
  } finally {
    await checkpoint?.close();
  }
  report.durationMs = Math.round(performance.now() - started);
  if (fatal) throw new StorageError(fatal.code, `migration stopped: ${fatal.message}`, { cause: fatal, details: { report } });
  return report;
}
