/**
 * The embedded quota store: counters and reservations in this process's memory, made
 * durable by a journal in a local folder (for the fs backend, `<root>/.stowage/quota/`).
 * Every change is one JSON line appended to the journal with a synchronous write before
 * the call resolves, so a SIGKILL at any instant loses nothing: the kernel has the line
 * (an fdatasync a second later, off the main thread, covers a power cut, see the README).
 * The one exception, a write's settle, is written with the next line: losing it loses
 * nothing either, since start-up repairs a write whose settle it lacks. Start-up loads
 * the snapshot and replays the journal; keyed reservations left open are the writes a
 * crash interrupted, which `open` hands to the layer to repair by a stat of each key.
 * When the journal grows past a bound it is folded into a new snapshot (written aside,
 * synced, renamed), and a new journal generation starts, so replay never applies a line
 * twice.
 *
 * One process owns the folder at a time (a lock file naming its pid); several service
 * instances share counters through the Redis store instead.
 */
import { closeSync, fdatasync, fsyncSync, mkdirSync, openSync, readFileSync, readdirSync, renameSync, unlinkSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { StorageError, errorMessage } from '../../core/errors.js';
import {
  itemsFor,
  QuotaRefused,
  type CounterDelta,
  type CounterUsage,
  type IndexedReservationRequest,
  type IndexedReserveOutcome,
  type IndexEntry,
  type KeyState,
  type PendingWrite,
  type QuotaStore,
  type ReservationItem,
  type ReservationRequest,
  type ReserveOutcome,
} from './store.js';

/** Journal lines past which the journal is folded into a snapshot. */
const COMPACT_AFTER_LINES = 100_000;
/** How soon after a change the journal is synced to the disk (a power cut loses at most this much). */
const SYNC_DELAY_MS = 1000;

interface Reservation {
  key?: string;
  before?: KeyState;
  /** Epoch ms; null: never lapses (a write of this process). */
  expiresAt: number | null;
  items: ReservationItem[];
}

type JournalLine =
  | { t: 'r'; id: string; r: Reservation }
  | { t: 'g'; id: string; items: ReservationItem[]; exp: number | null }
  | { t: 'n'; ids: readonly string[]; exp: number | null }
  | { t: 's'; ids: readonly string[]; deltas: readonly CounterDelta[]; ix?: [string, number | null][] }
  | { t: 'i'; all: [string, number][] }
  | { t: 'x'; ids: readonly string[] }
  | { t: 'z'; set: Record<string, [number, number]>; scopes: readonly string[] };

interface Snapshot {
  generation: number;
  counters: Record<string, [number, number]>;
  reservations: Record<string, Reservation>;
  index?: Record<string, number>;
}

const finite = (ms: number): number | null => (Number.isFinite(ms) ? ms : null);

/** Counters and reservations journaled in a local folder; see the module comment. */
export class EmbeddedQuotaStore implements QuotaStore {
  readonly kind = 'embedded';
  readonly leaseMs = Infinity;
  readonly dir: string;
  readonly #used = new Map<string, { bytes: number; objects: number }>();
  readonly #reservations = new Map<string, Reservation>();
  readonly #keys = new Map<string, string>();
  /** The size of every metered key the store has seen settled (see `reserveIndexed`). */
  readonly #index = new Map<string, number>();
  /** What live reservations hold per counter, kept as they come and go (a reserve is O(items), not O(reservations)). */
  readonly #held = new Map<string, { bytes: number; objects: number }>();
  /** The earliest expiry of a reservation that can lapse: sweeping waits until then. */
  #nextExpiry = Infinity;
  readonly #readOnly: boolean;
  #generation = 0;
  #fd: number | undefined;
  #lines = 0;
  #syncTimer: NodeJS.Timeout | undefined;
  /** Journal lines written with the next one (see `#commit`). */
  #deferred = '';
  /** The journal's sync in progress, which `close` waits for. */
  #syncing: Promise<void> | undefined;
  #ownsLock = false;

  /**
   * `dir` is created when missing. With `readOnly`, `open` only loads what is there (for
   * `stowage quota status` beside a running service): no lock is taken and every change throws.
   */
  constructor(dir: string, options: { readOnly?: boolean } = {}) {
    this.dir = dir;
    this.#readOnly = options.readOnly ?? false;
  }

  async open(): Promise<PendingWrite[]> {
    try {
      if (!this.#readOnly) {
        mkdirSync(this.dir, { recursive: true });
        this.#lock();
      }
      this.#load();
      if (!this.#readOnly) this.#compact();
    } catch (err) {
      if (err instanceof StorageError) throw err;
      throw new StorageError('E_UNAVAILABLE', `the quota journal in ${this.dir} cannot be opened: ${errorMessage(err)}`, { cause: err });
    }
    const pending: PendingWrite[] = [];
    // Read-only, the writes a crash left are the owner's to repair.
    if (this.#readOnly) return pending;
    for (const [id, r] of this.#reservations) if (r.key !== undefined) pending.push({ id, key: r.key, before: r.before ?? null, items: r.items });
    return pending;
  }

  async reserve(request: ReservationRequest): Promise<ReserveOutcome> {
    const { id, key, before, expiresAt, items } = request;
    this.#sweep();
    if (key !== undefined) {
      const holder = this.#keys.get(key);
      if (holder !== undefined && holder !== id) return 'busy';
    }
    this.#check(items, this.#reservations.get(id));
    const r: Reservation = { ...(key === undefined ? {} : { key, before: before ?? null }), expiresAt: finite(expiresAt), items };
    this.#commit({ t: 'r', id, r });
    return 'ok';
  }

  async reserveIndexed(request: IndexedReservationRequest): Promise<IndexedReserveOutcome> {
    const size = this.#index.get(request.key);
    const before: KeyState = size === undefined ? null : { size };
    const { id, key, expiresAt } = request;
    const outcome = await this.reserve({ id, key, before, expiresAt, items: itemsFor(request.counters, before, request.size, request.objects) });
    return outcome === 'busy' ? 'busy' : { before };
  }

  async grow(id: string, items: ReservationItem[], expiresAt: number): Promise<void> {
    this.#sweep();
    this.#check(items);
    const line: JournalLine = { t: 'g', id, items, exp: finite(expiresAt) };
    this.#commit(line);
  }

  async renew(ids: readonly string[], expiresAt: number): Promise<void> {
    const line: JournalLine = { t: 'n', ids, exp: finite(expiresAt) };
    this.#commit(line);
  }

  async settle(ids: readonly string[], deltas: readonly CounterDelta[], index: readonly IndexEntry[] = []): Promise<Map<string, CounterUsage>> {
    const line: JournalLine = { t: 's', ids, deltas, ...(index.length === 0 ? {} : { ix: index.map((e): [string, number | null] => [e.key, e.size]) }) };
    this.#commit(line, this.#repairable(ids));
    return this.read(deltas.map((d) => d.counter));
  }

  async replaceIndex(entries: ReadonlyMap<string, number>): Promise<void> {
    const line: JournalLine = { t: 'i', all: [...entries] };
    this.#commit(line);
  }

  async release(ids: readonly string[]): Promise<void> {
    const line: JournalLine = { t: 'x', ids };
    this.#commit(line, this.#repairable(ids));
  }

  async read(counters?: readonly string[]): Promise<Map<string, CounterUsage>> {
    this.#sweep();
    const reserved = this.#held;
    const out = new Map<string, CounterUsage>();
    const ids = counters ?? [...new Set([...this.#used.keys(), ...reserved.keys()])];
    for (const id of ids) {
      const used = this.#used.get(id);
      const held = reserved.get(id);
      out.set(id, { bytes: used?.bytes ?? 0, objects: used?.objects ?? 0, reservedBytes: held?.bytes ?? 0, reservedObjects: held?.objects ?? 0 });
    }
    return out;
  }

  async reset(counters: ReadonlyMap<string, { bytes: number; objects: number }>, scopes: readonly string[]): Promise<void> {
    const set: Record<string, [number, number]> = {};
    for (const [id, u] of counters) set[id] = [u.bytes, u.objects];
    const line: JournalLine = { t: 'z', set, scopes };
    this.#commit(line);
  }

  async takeLapsedWrites(): Promise<PendingWrite[]> {
    // This process's writes never lapse; a dead process's were handed out by `open`.
    return [];
  }

  async close(): Promise<void> {
    clearTimeout(this.#syncTimer);
    this.#syncTimer = undefined;
    await this.#syncing;
    this.#flush();
    if (this.#fd !== undefined) {
      fsyncSync(this.#fd);
      closeSync(this.#fd);
      this.#fd = undefined;
    }
    if (this.#ownsLock) unlinkSync(join(this.dir, 'lock'));
    this.#ownsLock = false;
  }

  /** Refuses (QuotaRefused) when an item would pass a limit; `previous` is a reservation the request replaces. */
  #check(items: readonly ReservationItem[], previous?: Reservation): void {
    // What the request's earlier items ask of a counter it names again.
    const pending = new Map<string, { bytes: number; objects: number }>();
    for (const item of items) {
      const earlier = pending.get(item.counter) ?? { bytes: 0, objects: 0 };
      for (const kind of ['bytes', 'objects'] as const) {
        const limit = kind === 'bytes' ? item.maxBytes : item.maxObjects;
        const asked = item[kind];
        const before = earlier[kind];
        earlier[kind] += asked;
        if (limit === undefined || asked <= 0) continue;
        const mine = previous?.items.filter((i) => i.counter === item.counter).reduce((n, i) => n + i[kind], 0) ?? 0;
        const held = (this.#held.get(item.counter)?.[kind] ?? 0) - mine + before;
        const used = Math.max(0, this.#used.get(item.counter)?.[kind] ?? 0);
        if (used + held + asked > limit) throw new QuotaRefused({ counter: item.counter, kind, limit, used, reserved: held, asked });
      }
      pending.set(item.counter, earlier);
    }
  }

  /** Adds (sign 1) or takes away (-1) what `items` hold from the per-counter totals. */
  #hold(items: readonly ReservationItem[], sign: 1 | -1): void {
    for (const item of items) {
      const t = this.#held.get(item.counter) ?? { bytes: 0, objects: 0 };
      t.bytes += sign * item.bytes;
      t.objects += sign * item.objects;
      if (t.bytes === 0 && t.objects === 0) this.#held.delete(item.counter);
      else this.#held.set(item.counter, t);
    }
  }

  #expiring(expiresAt: number | null): void {
    if (expiresAt !== null && expiresAt < this.#nextExpiry) this.#nextExpiry = expiresAt;
  }

  /** Drops lapsed reservations (a session's past its expiry). Not journaled: replay finds them lapsed by the same clock. */
  #sweep(now = Date.now()): void {
    if (now < this.#nextExpiry) return;
    this.#nextExpiry = Infinity;
    for (const [id, r] of this.#reservations) {
      if (r.expiresAt !== null && r.expiresAt <= now) this.#drop(id);
      else this.#expiring(r.expiresAt);
    }
  }

  #drop(id: string): void {
    const r = this.#reservations.get(id);
    if (r === undefined) return;
    this.#reservations.delete(id);
    this.#hold(r.items, -1);
    if (r.key !== undefined && this.#keys.get(r.key) === id) this.#keys.delete(r.key);
  }

  /** Applies one journal line to memory (the same code at run time and at replay). */
  #apply(line: JournalLine): void {
    switch (line.t) {
      case 'r':
        this.#drop(line.id);
        this.#reservations.set(line.id, line.r);
        this.#hold(line.r.items, 1);
        this.#expiring(line.r.expiresAt);
        if (line.r.key !== undefined) this.#keys.set(line.r.key, line.id);
        break;
      case 'g': {
        const r = this.#reservations.get(line.id);
        if (r === undefined) this.#reservations.set(line.id, { expiresAt: line.exp, items: line.items });
        else {
          r.items = [...r.items, ...line.items];
          r.expiresAt = line.exp;
        }
        this.#hold(line.items, 1);
        this.#expiring(line.exp);
        break;
      }
      case 'n':
        for (const id of line.ids) {
          const r = this.#reservations.get(id);
          if (r) r.expiresAt = line.exp;
        }
        this.#expiring(line.exp);
        break;
      case 's':
        for (const id of line.ids) this.#drop(id);
        for (const d of line.deltas) {
          const u = this.#used.get(d.counter) ?? { bytes: 0, objects: 0 };
          u.bytes += d.bytes;
          u.objects += d.objects;
          this.#used.set(d.counter, u);
        }
        for (const [key, size] of line.ix ?? []) {
          if (size === null) this.#index.delete(key);
          else this.#index.set(key, size);
        }
        break;
      case 'i':
        this.#index.clear();
        for (const [key, size] of line.all) this.#index.set(key, size);
        break;
      case 'x':
        for (const id of line.ids) this.#drop(id);
        break;
      case 'z':
        for (const [id, u] of this.#used) {
          if (line.scopes.some((s) => id.startsWith(s)) && !(id in line.set)) u.bytes = u.objects = 0;
        }
        for (const [id, [bytes, objects]] of Object.entries(line.set)) this.#used.set(id, { bytes, objects });
        break;
    }
  }

  /**
   * Whether a settle or release of `ids` may wait to be written (see `#commit`): each id
   * is a live keyed write, whose reservation line start-up would find open and repair by
   * looking at the key, exactly as after a crash mid-write. A session's reservation (no
   * key) or deltas of no write would be lost, so those lines are written at once.
   */
  #repairable(ids: readonly string[]): boolean {
    return ids.length > 0 && ids.every((id) => this.#reservations.get(id)?.key !== undefined);
  }

  /**
   * Makes one change: its line on the journal, then in memory, then (past the bound) a
   * compaction, which folds memory, this change included, into the snapshot. A
   * `deferred` line (a write's settle) is kept until the next line that is not, the sync
   * timer or close, and written with it: one system call per write rather than two, in
   * order. Losing it to a SIGKILL loses nothing, since its write's reservation line is on
   * the journal (see `#repairable`).
   */
  #commit(line: JournalLine, deferred = false): void {
    if (this.#readOnly) throw new StorageError('E_UNSUPPORTED', `the quota counters in ${this.dir} were opened read-only`);
    if (this.#fd === undefined) throw new StorageError('E_UNAVAILABLE', `the quota journal in ${this.dir} is not open`);
    const text = `${JSON.stringify(line)}\n`;
    if (deferred) this.#deferred += text;
    else {
      writeSync(this.#fd, this.#deferred + text);
      this.#deferred = '';
    }
    this.#apply(line);
    this.#lines += 1;
    this.#syncTimer ??= setTimeout(() => this.#sync(), SYNC_DELAY_MS).unref();
    if (this.#lines >= COMPACT_AFTER_LINES) this.#compact();
  }

  /** Writes the deferred lines. */
  #flush(): void {
    if (this.#deferred === '' || this.#fd === undefined) return;
    writeSync(this.#fd, this.#deferred);
    this.#deferred = '';
  }

  /**
   * Syncs the journal to the disk on a thread of the pool, not the main thread: a write's
   * own journal line never waits for it (the kernel has the line once it is written).
   * A sync that fails (EBADF after a compaction closed the file, EIO) is left to the next
   * one a change sets off, or to `close`, whose sync throws.
   */
  #sync(): void {
    this.#syncTimer = undefined;
    this.#flush();
    const fd = this.#fd;
    if (fd === undefined) return;
    // After one still running, so the lines written since it began are covered too.
    const current = (this.#syncing ?? Promise.resolve()).then(() => new Promise<void>((resolve) => fdatasync(fd, () => resolve())));
    this.#syncing = current;
    void current.then(() => {
      if (this.#syncing === current) this.#syncing = undefined;
    });
  }

  /** Loads the snapshot and replays its generation's journal; a torn last line (a crash mid-write) is ignored. */
  #load(): void {
    let snapshot: Snapshot | undefined;
    try {
      snapshot = JSON.parse(readFileSync(join(this.dir, 'snapshot.json'), 'utf8')) as Snapshot;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
    this.#generation = snapshot?.generation ?? 0;
    for (const [id, [bytes, objects]] of Object.entries(snapshot?.counters ?? {})) this.#used.set(id, { bytes, objects });
    for (const [id, r] of Object.entries(snapshot?.reservations ?? {})) this.#apply({ t: 'r', id, r });
    for (const [key, size] of Object.entries(snapshot?.index ?? {})) this.#index.set(key, size);
    let text = '';
    try {
      text = readFileSync(this.#journalPath(this.#generation), 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
    const lines = text.split('\n');
    for (const [i, raw] of lines.entries()) {
      if (raw === '') continue;
      let line: JournalLine;
      try {
        line = JSON.parse(raw) as JournalLine;
      } catch (err) {
        // Only the last line can be torn by a crash; one before it means the file was damaged.
        if (i >= lines.length - 2) break;
        throw new StorageError('E_UNAVAILABLE', `the quota journal ${this.#journalPath(this.#generation)} is damaged at line ${i + 1}; run \`stowage quota reconcile\` after moving it away`, { cause: err });
      }
      this.#apply(line);
    }
  }

  /** Folds memory into a new snapshot and starts the next journal generation. */
  #compact(): void {
    const next = this.#generation + 1;
    const snapshot: Snapshot = { generation: next, counters: {}, reservations: Object.fromEntries(this.#reservations), ...(this.#index.size === 0 ? {} : { index: Object.fromEntries(this.#index) }) };
    for (const [id, u] of this.#used) if (u.bytes !== 0 || u.objects !== 0) snapshot.counters[id] = [u.bytes, u.objects];
    // Lines not written yet are in memory, hence in the snapshot.
    this.#deferred = '';
    const journal = openSync(this.#journalPath(next), 'w');
    fsyncSync(journal);
    const tmp = join(this.dir, 'snapshot.json.tmp');
    writeFileSync(tmp, JSON.stringify(snapshot));
    const tmpFd = openSync(tmp, 'r');
    fsyncSync(tmpFd);
    closeSync(tmpFd);
    // From the rename on, start-up reads generation `next`: the old journal is folded in.
    renameSync(tmp, join(this.dir, 'snapshot.json'));
    syncDir(this.dir);
    if (this.#fd !== undefined) closeSync(this.#fd);
    this.#fd = openSync(this.#journalPath(next), 'a');
    closeSync(journal);
    this.#generation = next;
    this.#lines = 0;
    for (const name of readdirSync(this.dir)) {
      const match = /^journal-(\d+)\.log$/.exec(name);
      if (match && Number(match[1]) !== next) unlinkSync(join(this.dir, name));
    }
  }

  #journalPath(generation: number): string {
    return join(this.dir, `journal-${generation}.log`);
  }

  /** Takes the folder for this process: a lock file naming the pid; one whose process is gone is taken over. */
  #lock(): void {
    const path = join(this.dir, 'lock');
    for (let attempt = 0; attempt < 2; attempt++) {
      try {
        const fd = openSync(path, 'wx');
        writeSync(fd, String(process.pid));
        closeSync(fd);
        this.#ownsLock = true;
        return;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      }
      const pid = Number(readFileSync(path, 'utf8'));
      if (Number.isInteger(pid) && pid > 0 && isAlive(pid)) {
        throw new StorageError('E_CONFIG_INVALID', `the quota counters in ${this.dir} are in use by process ${pid}: one process uses the embedded quota store at a time (several instances share counters through Redis: STOWAGE_QUOTA_REDIS_URL)`);
      }
      unlinkSync(path);
    }
    throw new StorageError('E_UNAVAILABLE', `the quota counters in ${this.dir} could not be locked`);
  }
}

function isAlive(pid: number): boolean {
  if (pid === process.pid) return true;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function syncDir(dir: string): void {
  const fd = openSync(dir, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}
