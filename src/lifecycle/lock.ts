/**
 * The lock that lets one lifecycle runner at a time work on a storage, however many
 * service instances run: a lease that its holder renews while it runs and that another
 * runner takes over once it was not renewed in time (its holder died, or hangs).
 *
 * {@link FileRunLock} keeps the lease in a file, which serves instances on one machine
 * (or on a file system they share with working atomic links, not every network one);
 * instances on different machines need a lock they all reach, such as `RedisRunLock`.
 */
import { randomBytes } from 'node:crypto';
import { link, mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { basename, dirname } from 'node:path';
import { errnoCode } from '../drivers/fs/errors.js';
import { KeyLocks } from '../drivers/fs/lock.js';

/** A held lease: renew it before `ttlMs` passes, release it when done. */
export interface RunLease {
  /** Extends the lease by the ttl it was taken with; false when it was lost (taken over after it lapsed), and the holder must stop. */
  renew(): Promise<boolean>;
  /** Ends the lease, if still held, so another runner may start at once. */
  release(): Promise<void>;
}

/** One runner at a time: `tryAcquire` takes the lease for `ttlMs`, or resolves undefined while another holds it. */
export interface RunLock {
  tryAcquire(ttlMs: number): Promise<RunLease | undefined>;
  /** Lets go of what the lock keeps open (a Redis connection); a lease still held lapses at the end of its ttl. */
  close?(): Promise<void>;
}

/** What the lock file says: who holds it, and until when. */
interface Holder {
  host: string;
  pid: number;
  token: string;
  /** Milliseconds since the epoch; past it the lease is anyone's. */
  expiresAt: number;
}

/**
 * A lease in a lock file. It is created whole (written to a temp file, then linked to
 * its name, which fails when the name exists), so a reader never sees half a holder and
 * two creators cannot both succeed. Taking over a lapsed lease, renewing and releasing
 * read and replace the file under a short guard lock beside it (the fs driver's commit
 * lock), so a renewal and a takeover cannot interleave. Leases lapse by the wall clock:
 * machines sharing the file need clocks that agree within a fraction of the ttl.
 */
export class FileRunLock implements RunLock {
  /** The lock file. */
  readonly path: string;
  readonly #guard: KeyLocks;

  /** `path` is the lock file; its folder is created when missing. */
  constructor(path: string) {
    this.path = path;
    this.#guard = new KeyLocks(dirname(path));
  }

  async tryAcquire(ttlMs: number): Promise<RunLease | undefined> {
    if (!Number.isFinite(ttlMs) || ttlMs <= 0) throw new RangeError('ttlMs must be a positive number of milliseconds');
    await mkdir(dirname(this.path), { recursive: true });
    const token = randomBytes(12).toString('hex');
    const holder = (): Holder => ({ host: hostname(), pid: process.pid, token, expiresAt: Date.now() + ttlMs });
    const acquired = (await this.#create(holder())) || (await this.#guarded(async () => {
      const current = await this.#read();
      if (current === undefined) return this.#create(holder()); // released meanwhile
      if (current.expiresAt > Date.now()) return false;
      await this.#replace(holder()); // lapsed: its holder died or stopped renewing
      return true;
    }));
    if (!acquired) return undefined;
    return {
      renew: () => this.#guarded(async () => {
        if ((await this.#read())?.token !== token) return false;
        await this.#replace(holder());
        return true;
      }),
      release: () => this.#guarded(async () => {
        if ((await this.#read())?.token === token) await rm(this.path, { force: true });
      }),
    };
  }

  /** Who holds the lock file now (its lease may have lapsed); undefined when there is none. */
  async holder(): Promise<Holder | undefined> {
    return this.#read();
  }

  /** Creates the lock file naming `holder`; false when it exists. */
  async #create(holder: Holder): Promise<boolean> {
    const temp = await this.#temp(holder);
    try {
      await link(temp, this.path);
      return true;
    } catch (err) {
      if (errnoCode(err) === 'EEXIST') return false;
      throw err;
    } finally {
      await rm(temp, { force: true });
    }
  }

  /** Replaces the lock file whole (a rename), under the guard. */
  async #replace(holder: Holder): Promise<void> {
    const temp = await this.#temp(holder);
    try {
      await rename(temp, this.path);
    } finally {
      await rm(temp, { force: true });
    }
  }

  async #temp(holder: Holder): Promise<string> {
    const temp = `${this.path}.${holder.token}.${randomBytes(4).toString('hex')}.tmp`;
    await writeFile(temp, JSON.stringify(holder));
    return temp;
  }

  /**
   * The holder in the lock file. Every holder writes the file whole, so one that does not
   * parse was not written by a runner (by hand, by another program) and counts as lapsed.
   */
  async #read(): Promise<Holder | undefined> {
    let text: string;
    try {
      text = await readFile(this.path, 'utf8');
    } catch (err) {
      if (errnoCode(err) === 'ENOENT') return undefined;
      throw err;
    }
    try {
      const parsed = JSON.parse(text) as Partial<Holder>;
      if (typeof parsed.token === 'string' && typeof parsed.expiresAt === 'number') return parsed as Holder;
    } catch {
      // not a runner's: lapsed, below
    }
    return { host: '', pid: 0, token: '', expiresAt: 0 };
  }

  #guarded<T>(fn: () => Promise<T>): Promise<T> {
    return this.#guard.withLocks([basename(this.path)], fn);
  }
}
