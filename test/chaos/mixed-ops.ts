/**
 * R1's workload: a seeded plan of mixed operations (small and large puts, from buffers
 * and streams; whole, ranged and stat reads; deletes; copies; listings) run with some
 * concurrency against a storage whose backend misbehaves, every outcome recorded in an
 * {@link ObjectModel}; then the end state, checked object by object against the model.
 */
import { Readable } from 'node:stream';
import { isStorageError, type ObjectInfo, type Storage } from '../../src/index.js';
import { seededRandom } from '../../src/layers/faults.js';
import { collect } from '../conformance/harness.js';
import { contentOf, describe, infoMatches, KeyLocks, newVersion, ObjectModel, sha256Hex, unstamped, type Candidate, type Version, type WriteOutcome } from './model.js';

/** The backend under test, as the workload sees it. */
export interface ChaosTarget {
  storage: Storage;
  /** The size of a large put (a multipart upload on S3). */
  largeSize: (random: () => number) => number;
  /** Called before a write of `key`; after it failed, the returned function tells whether it may have taken effect ('unknown') or not ('failed'). */
  watchWrite: (key: string) => (err: unknown) => Exclude<WriteOutcome, 'acknowledged'>;
  /** A large put whose outcome is unknown may leave its bytes without their stored SHA-256 (S3's multipart puts: see {@link unstamped}). */
  largeMayStayUnstamped?: boolean;
}

/** Sizes of a run. */
export interface MixedRunOptions {
  operations: number;
  keys: number;
  concurrency: number;
  seed: number;
}

/** What the run did, counted. */
export interface MixedCounts {
  operations: number;
  writes: number;
  acknowledged: number;
  failed: number;
  unknown: number;
  /** Of the unknown ones, large puts that may have left their bytes unstamped. */
  unknownMayStayUnstamped: number;
  reads: number;
  /** Reads and stats that found an object without its stored SHA-256. */
  unstampedSeen: number;
  readsFailed: number;
  lists: number;
}

type Op =
  | { kind: 'put'; key: string; size: number; large: boolean; stream: boolean; contentType: string }
  | { kind: 'get' | 'stat' | 'delete'; key: string }
  | { kind: 'range'; key: string; at: number; length: number }
  | { kind: 'copy'; from: string; to: string }
  | { kind: 'list' };

const TYPES = ['application/octet-stream', 'text/plain', 'image/png'];
/** How often each operation comes up, out of 100. */
const WEIGHTS: [Op['kind'] | 'large', number][] = [['put', 24], ['large', 6], ['get', 16], ['range', 14], ['stat', 8], ['delete', 10], ['copy', 12], ['list', 10]];

/** The plan: the same for a seed (sizes, keys, kinds); what the backend does with it varies. */
function plan(options: MixedRunOptions, target: ChaosTarget): Op[] {
  const random = seededRandom(options.seed);
  const key = () => `obj-${String(Math.floor(random() * options.keys)).padStart(3, '0')}`;
  const ops: Op[] = [];
  for (let i = 0; i < options.operations; i++) {
    let roll = random() * 100;
    const kind = (WEIGHTS.find(([, weight]) => (roll -= weight) < 0) ?? WEIGHTS[0] ?? ['put'])[0];
    if (kind === 'put' || kind === 'large') {
      const large = kind === 'large';
      // Small bodies include empty ones.
      const size = large ? target.largeSize(random) : random() < 0.05 ? 0 : Math.floor(random() * 64 * 1024);
      ops.push({ kind: 'put', key: key(), size, large, stream: random() < 0.5, contentType: TYPES[Math.floor(random() * TYPES.length)] as string });
    } else if (kind === 'range') ops.push({ kind, key: key(), at: random(), length: 1 + Math.floor(random() * 256 * 1024) });
    else if (kind === 'copy') {
      const from = key();
      let to = key();
      while (to === from) to = key();
      ops.push({ kind, from, to });
    } else if (kind === 'list') ops.push({ kind });
    else ops.push({ kind, key: key() });
  }
  return ops;
}

/** A body for `bytes`: the buffer itself, or a stream of 64 KiB chunks (which no driver can re-read). */
function bodyOf(bytes: Buffer, stream: boolean): Buffer | Readable {
  if (!stream) return bytes;
  const chunks: Buffer[] = [];
  for (let at = 0; at < bytes.length; at += 64 * 1024) chunks.push(bytes.subarray(at, at + 64 * 1024));
  return Readable.from(chunks);
}

/** Runs the plan and returns the model of what the backend acknowledged, with the counts. */
export async function runMixed(target: ChaosTarget, options: MixedRunOptions): Promise<{ model: ObjectModel; counts: MixedCounts }> {
  const keys = Array.from({ length: options.keys }, (_, i) => `obj-${String(i).padStart(3, '0')}`);
  const model = new ObjectModel(keys);
  const locks = new KeyLocks();
  const counts: MixedCounts = { operations: 0, writes: 0, acknowledged: 0, failed: 0, unknown: 0, unknownMayStayUnstamped: 0, reads: 0, unstampedSeen: 0, readsFailed: 0, lists: 0 };
  const { storage } = target;
  const ops = plan(options, target);

  const write = async (key: string, next: Candidate, run: () => Promise<void>, partial: readonly Version[] = []): Promise<void> => {
    counts.writes++;
    const outcomeOf = target.watchWrite(key);
    let outcome: WriteOutcome = 'acknowledged';
    try {
      await run();
    } catch (err) {
      outcome = outcomeOf(err);
    }
    counts[outcome]++;
    if (outcome === 'unknown' && partial.length > 0) counts.unknownMayStayUnstamped++;
    model.wrote(key, next, outcome, partial);
  };
  /** A read: a missing object, or a range past the end, is an observation; other errors count as failed reads. */
  const read = async (key: string, run: () => Promise<void>, rangeStart?: number): Promise<void> => {
    counts.reads++;
    try {
      await run();
    } catch (err) {
      if (isStorageError(err, 'E_NOT_FOUND')) model.observe(key, 'a read found nothing', (c) => c === null);
      else if (rangeStart !== undefined && isStorageError(err, 'E_RANGE_NOT_SATISFIABLE')) model.observe(key, `a range from ${rangeStart} was past the end`, (c) => c !== null && c.size <= rangeStart);
      else counts.readsFailed++;
    }
  };
  const checkWritten = (key: string, version: Version, info: ObjectInfo) => {
    if (!infoMatches(version, info)) model.violations.push(`${key}: put of v${version.id} answered with other info (${info.size} B, ${info.sha256})`);
  };

  const run = async (index: number, op: Op): Promise<void> => {
    if (op.kind === 'list') return list();
    const release = await locks.acquire(op.kind === 'copy' ? [op.from, op.to] : [op.key]);
    try {
      if (op.kind === 'put') {
        const { version, bytes } = newVersion(index, op.size, op.contentType, { op: String(index), origin: 'chaos-r1' });
        const partial = op.large && target.largeMayStayUnstamped ? [unstamped(version)] : [];
        await write(op.key, version, async () => checkWritten(op.key, version, await storage.put(op.key, bodyOf(bytes, op.stream), { contentType: version.contentType, metadata: version.metadata })), partial);
      } else if (op.kind === 'delete') {
        await write(op.key, null, () => storage.delete(op.key));
      } else if (op.kind === 'get') {
        await read(op.key, async () => {
          const reader = await storage.getStream(op.key);
          const bytes = await collect(reader.stream);
          const hash = sha256Hex(bytes);
          if (reader.info.sha256 === undefined) counts.unstampedSeen++;
          model.observe(op.key, `a read gave ${bytes.length} B: ${model.whatIs(op.key, hash, reader.info.sha256)}`, (c) => c !== null && c.sha256 === hash && infoMatches(c, reader.info));
        });
      } else if (op.kind === 'stat') {
        await read(op.key, async () => {
          const info = await storage.stat(op.key);
          if (info.sha256 === undefined) counts.unstampedSeen++;
          model.observe(op.key, `stat gave ${info.size} B, stored SHA-256 ${info.sha256 ?? 'missing'}`, (c) => c !== null && infoMatches(c, info));
        });
      } else if (op.kind === 'range') {
        const largest = Math.max(0, ...model.candidates(op.key).map((c) => c?.size ?? 0));
        const start = Math.floor(op.at * largest);
        const end = start + op.length - 1;
        await read(op.key, async () => {
          const bytes = await storage.get(op.key, { range: { start, end } });
          model.observe(op.key, `range ${start}-${end} gave ${bytes.length} B`, (c) => c !== null && c.size > start && contentOf(c.id, c.size).subarray(start, end + 1).equals(bytes));
        }, start);
      } else if (op.kind === 'copy') await copy(op.from, op.to);
    } finally {
      release();
    }
  };

  const copy = async (from: string, to: string): Promise<void> => {
    counts.writes++;
    const outcomeOf = target.watchWrite(to);
    const sources = model.candidates(from);
    try {
      const info = await storage.copy(from, to);
      // (After a violation, the copy holds one of the sources: that keeps one fault from reporting again at every later read.)
      if (model.observe(from, `a copy of it gave ${info.size} B, stored SHA-256 ${info.sha256 ?? 'missing'}`, (c) => c !== null && infoMatches(c, info))) model.wrote(to, model.candidates(from)[0] ?? null, 'acknowledged');
      else model.mayHold(to, sources);
      counts.acknowledged++;
    } catch (err) {
      // A missing source is an answer: nothing was copied.
      if (isStorageError(err, 'E_NOT_FOUND')) {
        model.observe(from, 'a copy found nothing', (c) => c === null);
        counts.failed++;
        return;
      }
      const outcome = outcomeOf(err);
      counts[outcome]++;
      if (outcome === 'unknown') model.mayHold(to, sources);
    }
  };

  const list = async (): Promise<void> => {
    counts.lists++;
    const snap = locks.snapshot();
    const listed = new Map<string, number>();
    try {
      for await (const info of storage.listAll({ details: false })) listed.set(info.key, info.size);
    } catch {
      counts.readsFailed++;
      return;
    }
    for (const key of listed.keys()) if (!keys.includes(key)) model.violations.push(`a listing showed ${key}, which no operation wrote`);
    // Only keys nobody touched during the listing have one answer.
    for (const key of keys.filter((k) => locks.untouchedSince(snap, k))) {
      const size = listed.get(key);
      if (size === undefined) model.observe(key, 'a listing left it out', (c) => c === null);
      else model.observe(key, `a listing showed it with ${size} B`, (c) => c !== null && c.size === size);
    }
  };

  let next = 0;
  const worker = async () => {
    for (let i = next++; i < ops.length; i = next++) {
      await run(i, ops[i] as Op);
      counts.operations++;
    }
  };
  await Promise.all(Array.from({ length: options.concurrency }, worker));
  return { model, counts };
}

/** What the end state showed, counted. */
export interface EndState {
  intact: number;
  /** Whole versions without their stored SHA-256, where the model allows it (see {@link unstamped}). */
  unstamped: number;
  absent: number;
  lost: number;
  corrupt: number;
  strays: number;
  problems: string[];
}

/**
 * Checks every key against the model with a storage that works: each object must be one
 * of the versions the model allows, whole (bytes, SHA-256, type, metadata), and nothing may
 * be there that no operation wrote. An allowed absence counts as `absent`; a missing object
 * the model requires, or another version than allowed, as `lost`; bytes that are no
 * version sent to the key, or a stored SHA-256 that does not match the bytes, as `corrupt`.
 */
export async function checkEndState(storage: Storage, model: ObjectModel): Promise<EndState> {
  const end: EndState = { intact: 0, unstamped: 0, absent: 0, lost: 0, corrupt: 0, strays: 0, problems: [] };
  for (const key of model.keys) {
    const allowed = model.candidates(key);
    let bytes: Buffer;
    let info: ObjectInfo;
    try {
      const reader = await storage.getStream(key);
      info = reader.info;
      bytes = await collect(reader.stream);
    } catch (err) {
      if (!isStorageError(err, 'E_NOT_FOUND')) throw err;
      if (allowed.includes(null)) end.absent++;
      else {
        end.lost++;
        end.problems.push(`${key}: missing, but the model requires ${describe(allowed)}`);
      }
      continue;
    }
    const hash = sha256Hex(bytes);
    const found = allowed.find((c) => c !== null && c.sha256 === hash && infoMatches(c, info) && bytes.length === c.size);
    if (found) end[found.unstamped ? 'unstamped' : 'intact']++;
    else if ((info.sha256 !== undefined && hash !== info.sha256) || !model.sentVersion(key, hash)) {
      end.corrupt++;
      end.problems.push(`${key}: ${bytes.length} B, ${model.whatIs(key, hash, info.sha256)}; the model allows ${describe(allowed)}`);
    } else {
      end.lost++;
      end.problems.push(`${key}: ${model.whatIs(key, hash, info.sha256)}, or other type or metadata, but the model allows ${describe(allowed)}`);
    }
  }
  for await (const info of storage.listAll({ details: false })) {
    if (!model.keys.includes(info.key)) {
      end.strays++;
      end.problems.push(`${info.key}: an object no operation wrote`);
    }
  }
  return end;
}
