/**
 * The writer's lease of an S3 upload session, so that two processes (or service
 * instances) never write one session at once: `.stowage/sessions/<id>/lease`, created
 * with If-None-Match `*` (which the service makes atomic where it enforces it on
 * PutObject; elsewhere a HEAD first, not atomic) and naming its holder (host, pid, a
 * token). It is refreshed while a long write goes on and deleted when the write ends.
 * A lease left by a process that died on this host is taken over at once; one from
 * elsewhere once it has not been refreshed for {@link STALE_LEASE_MS}, as a crashed
 * writer's would not be. A live holder makes the other writer fail with
 * E_PRECONDITION_FAILED (retryable), as tus servers answer 423.
 */
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { isStorageError } from '../../core/errors.js';
import { processAlive } from '../../core/local-disk.js';
import { sessionBusy } from '../../core/sessions.js';
import type { S3Call } from './multipart.js';
import type { ResolvedS3Options } from './options.js';
import { s3 } from './sdk.js';
import type { SessionPlace } from './session-state.js';

/** The lease's name in the session's folder. */
export const LEASE_NAME = 'lease';
/** A lease not refreshed for this long belongs to a writer that is gone. */
export const STALE_LEASE_MS = 120_000;
/** How often a writer refreshes its lease. */
const REFRESH_MS = 30_000;

/** Who holds a lease. */
interface LeaseHolder {
  host: string;
  pid: number;
  token: string;
}

/** A lease this process holds; `release()` ends it. */
export class SessionLease {
  readonly #call: S3Call;
  readonly #o: ResolvedS3Options;
  readonly #key: string;
  readonly #body: string;
  #timer: NodeJS.Timeout | undefined;

  private constructor(call: S3Call, o: ResolvedS3Options, key: string, body: string) {
    this.#call = call;
    this.#o = o;
    this.#key = key;
    this.#body = body;
  }

  /** Takes the session's lease, or fails with E_PRECONDITION_FAILED while another live writer holds it. */
  static async take(call: S3Call, o: ResolvedS3Options, place: SessionPlace): Promise<SessionLease> {
    const mine: LeaseHolder = { host: hostname(), pid: process.pid, token: randomBytes(8).toString('hex') };
    const lease = new SessionLease(call, o, place.tailKey(LEASE_NAME), JSON.stringify(mine));
    for (let attempt = 0; attempt < 2; attempt++) {
      // A retried create whose first attempt did succeed finds its own lease.
      const holder = (await lease.#create()) ? 'mine' : await lease.#holder(mine.token);
      if (holder === 'mine') {
        lease.#timer = setInterval(() => void lease.#put(false).catch(() => undefined), REFRESH_MS);
        lease.#timer.unref();
        return lease;
      }
      if (holder === 'alive') throw sessionBusy(place.id);
      await call('remove a dead writer\'s lease', (c) => c.send(new (s3().DeleteObjectCommand)({ Bucket: o.bucket, Key: lease.#key })));
    }
    throw sessionBusy(place.id);
  }

  /** Creates the lease unless one exists; false when one does. */
  async #create(): Promise<boolean> {
    if (this.#o.profile.conditionalPut === 'none' && (await this.#head()) !== undefined) return false;
    try {
      await this.#put(true);
      return true;
    } catch (err) {
      if (isStorageError(err, 'E_PRECONDITION_FAILED')) return false;
      throw err;
    }
  }

  async #put(create: boolean): Promise<void> {
    const IfNoneMatch = create && this.#o.profile.conditionalPut !== 'none' ? '*' : undefined;
    await this.#call('write a session lease', (c) => c.send(new (s3().PutObjectCommand)({ Bucket: this.#o.bucket, Key: this.#key, Body: this.#body, ContentType: 'application/json', IfNoneMatch })));
  }

  async #head(): Promise<{ lastModified: Date } | undefined> {
    try {
      const out = await this.#call('read a session lease', (c) => c.send(new (s3().HeadObjectCommand)({ Bucket: this.#o.bucket, Key: this.#key })));
      return { lastModified: out.LastModified ?? new Date(0) };
    } catch (err) {
      if (isStorageError(err, 'E_NOT_FOUND')) return undefined;
      throw err;
    }
  }

  /**
   * Who holds the lease: this very lease (`token`), a writer that is gone (a process that
   * died on this host, or a lease not refreshed for too long), or a live one.
   */
  async #holder(token: string): Promise<'mine' | 'gone' | 'alive'> {
    let text: string;
    let lastModified: Date;
    try {
      const out = await this.#call('read a session lease', (c) => c.send(new (s3().GetObjectCommand)({ Bucket: this.#o.bucket, Key: this.#key })));
      text = (await out.Body?.transformToString('utf8')) ?? '';
      lastModified = out.LastModified ?? new Date(0);
    } catch (err) {
      if (isStorageError(err, 'E_NOT_FOUND')) return 'gone'; // released meanwhile
      throw err;
    }
    const holder = (() => {
      try {
        return JSON.parse(text) as Partial<LeaseHolder>;
      } catch {
        return {};
      }
    })();
    if (holder.token === token) return 'mine';
    if (holder.host === hostname() && typeof holder.pid === 'number' && !processAlive(holder.pid)) return 'gone';

    return Date.now() - lastModified.getTime() > STALE_LEASE_MS ? 'gone' : 'alive';
  }

  /** Ends the lease; a failure leaves it to go stale. */
  async release(): Promise<void> {
    clearInterval(this.#timer);
    await this.#call('release a session lease', (c) => c.send(new (s3().DeleteObjectCommand)({ Bucket: this.#o.bucket, Key: this.#key }))).catch(() => undefined);
  }
}
