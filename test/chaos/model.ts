/**
 * The model the chaos tests check a backend against: for every key, the versions it may
 * hold, given what the backend acknowledged. An acknowledged write leaves exactly its
 * version; a write that failed before reaching the backend leaves what was there; a write
 * whose outcome is unknown (it reached the backend but its answer was lost) leaves either.
 * A read narrows the choice to what it saw, since nothing else writes the key meanwhile
 * (operations on one key are serialized by {@link KeyLocks}). Anything a read or the end
 * state shows that the model does not allow is a violation.
 */
import { createCipheriv, createHash } from 'node:crypto';

/** `process.env.STOWAGE_CHAOS === 'full'`: the full sizes (`npm run chaos`); otherwise reduced ones for `npm test`. */
export const FULL_CHAOS = process.env.STOWAGE_CHAOS === 'full';

/** One version of an object, as a write sent it. */
export interface Version {
  id: number;
  size: number;
  sha256: string;
  contentType: string;
  metadata: Record<string, string>;
  /** These bytes stored without their SHA-256 (see {@link unstamped}). */
  unstamped?: true;
}

/**
 * `version`'s bytes, type and metadata, but no stored SHA-256: what an S3 multipart put
 * leaves when it fails after completing the upload and before stamping the object's
 * SHA-256 on it (two requests; the object is whole but unstamped).
 */
export function unstamped(version: Version): Version {
  return { ...version, unstamped: true };
}

/** What a key may hold: versions, or `null` for no object. */
export type Candidate = Version | null;

/**
 * The bytes of version `id`: an AES-CTR keystream keyed by the id, so any version can be
 * rebuilt (for range checks) without keeping every body in memory.
 */
export function contentOf(id: number, size: number): Buffer {
  const key = createHash('sha256').update(`chaos-version-${id}`).digest();
  return createCipheriv('aes-128-ctr', key.subarray(0, 16), key.subarray(16, 32)).update(Buffer.alloc(size));
}

/** The SHA-256 of some bytes, hex. */
export function sha256Hex(data: Uint8Array): string {
  return createHash('sha256').update(data).digest('hex');
}

/** A new version of `size` bytes with this type and metadata. */
export function newVersion(id: number, size: number, contentType: string, metadata: Record<string, string>): { version: Version; bytes: Buffer } {
  const bytes = contentOf(id, size);
  return { version: { id, size, sha256: sha256Hex(bytes), contentType, metadata }, bytes };
}

/** How each write ended, as the tests count them. */
export type WriteOutcome = 'acknowledged' | 'failed' | 'unknown';

/** Per-key FIFO locks: operations on one key run one at a time, in the order they asked. */
export class KeyLocks {
  readonly #tails = new Map<string, Promise<void>>();
  /** Keys with an operation holding or waiting for them, and how many. */
  readonly #busy = new Map<string, number>();
  /** How many operations have taken each key so far. */
  readonly #generation = new Map<string, number>();

  /** Takes every key (in sorted order, so two operations never wait on each other); resolves with the release. */
  async acquire(keys: readonly string[]): Promise<() => void> {
    const releases: (() => void)[] = [];
    for (const key of [...new Set(keys)].sort()) {
      this.#busy.set(key, (this.#busy.get(key) ?? 0) + 1);
      this.#generation.set(key, (this.#generation.get(key) ?? 0) + 1);
      const previous = this.#tails.get(key) ?? Promise.resolve();
      let release!: () => void;
      const mine = new Promise<void>((resolve) => (release = resolve));
      this.#tails.set(key, previous.then(() => mine));
      await previous;
      releases.push(() => {
        this.#busy.set(key, (this.#busy.get(key) ?? 1) - 1);
        release();
      });
    }
    return () => releases.forEach((r) => r());
  }

  /** A snapshot to tell, later, which keys nobody touched in between (see {@link untouchedSince}). */
  snapshot(): { busy: Set<string>; generation: Map<string, number> } {
    return { busy: new Set([...this.#busy].filter(([, n]) => n > 0).map(([k]) => k)), generation: new Map(this.#generation) };
  }

  /** Whether no operation held or took `key` since `snap`. */
  untouchedSince(snap: ReturnType<KeyLocks['snapshot']>, key: string): boolean {
    return !snap.busy.has(key) && (this.#generation.get(key) ?? 0) === (snap.generation.get(key) ?? 0);
  }
}

/** The model proper. */
export class ObjectModel {
  readonly #state = new Map<string, Candidate[]>();
  /** Every version ever sent to a key, to tell a stale version from garbage. */
  readonly #sent = new Map<string, Version[]>();
  readonly violations: string[] = [];

  constructor(readonly keys: readonly string[]) {
    for (const key of keys) this.#state.set(key, [null]);
  }

  /** What `key` may hold now. */
  candidates(key: string): readonly Candidate[] {
    return this.#state.get(key) ?? [null];
  }

  /** Records the outcome of writing `next` (a version, or null for a delete) to `key`; an unknown one may also have left the `partial` states. */
  wrote(key: string, next: Candidate, outcome: WriteOutcome, partial: readonly Version[] = []): void {
    if (next) this.#sent.set(key, [...(this.#sent.get(key) ?? []), next]);
    if (outcome === 'acknowledged') this.#state.set(key, [next]);
    if (outcome === 'unknown') this.#state.set(key, unique([...this.candidates(key), next, ...partial]));
  }

  /** Records an unknown copy: `key` may hold what it held, or any of `sources`. */
  mayHold(key: string, sources: readonly Candidate[]): void {
    this.#state.set(key, unique([...this.candidates(key), ...sources.filter((v) => v !== null)]));
  }

  /**
   * Narrows `key` to the candidates a read saw (those `fits` accepts). A read that fits
   * none is a violation, recorded with `what`, and leaves the state as it was.
   */
  observe(key: string, what: string, fits: (candidate: Candidate) => boolean): boolean {
    const left = this.candidates(key).filter(fits);
    if (left.length === 0) {
      this.violations.push(`${key}: ${what}, which the model does not allow (may hold ${describe(this.candidates(key))})`);
      return false;
    }
    this.#state.set(key, left);
    return true;
  }

  /** The version sent to `key` whose bytes have this SHA-256, if any (a stale version, not garbage). */
  sentVersion(key: string, sha256: string): Version | undefined {
    return (this.#sent.get(key) ?? []).find((v) => v.sha256 === sha256);
  }

  /** Says what some bytes read from `key` are, for messages: a version sent to it, or none; and the SHA-256 stored with them. */
  whatIs(key: string, sha256: string, stored: string | undefined): string {
    const version = this.sentVersion(key, sha256);
    const bytes = version ? `the bytes of v${version.id}` : `bytes of no version sent to it (SHA-256 ${sha256})`;
    return `${bytes}, stored SHA-256 ${stored === sha256 ? 'matching' : (stored ?? 'missing')}`;
  }
}

function unique(candidates: Candidate[]): Candidate[] {
  return [...new Set(candidates)];
}

/** The candidates, short, for messages. */
export function describe(candidates: readonly Candidate[]): string {
  return candidates.map((c) => (c ? `v${c.id} (${c.size} B)` : 'nothing')).join(' or ');
}

/** Whether an object's stored info is that of `version`: size, SHA-256, type and metadata. */
export function infoMatches(version: Version, info: { size: number; sha256?: string; contentType?: string; metadata?: Record<string, string> }): boolean {
  const metadata = info.metadata ?? {};
  return (
    info.size === version.size &&
    info.sha256 === (version.unstamped ? undefined : version.sha256) &&
    info.contentType === version.contentType &&
    Object.keys(version.metadata).length === Object.keys(metadata).length &&
    Object.entries(version.metadata).every(([k, v]) => metadata[k] === v)
  );
}
