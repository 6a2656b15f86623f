/**
 * "One runner at a time across instances" (the lifecycle scheduler's runs): a Redis key
 * set with NX and a TTL, holding a random token. Only the holder's token renews or
 * releases it (checked and done in one Lua step), so an instance whose lock went stale
 * and was taken by another cannot extend or drop the new holder's lock.
 */
import { randomUUID } from 'node:crypto';
import { StorageError } from '../../core/errors.js';
import { RedisConnection } from './redis-connection.js';

/** A lock held: renew it before its ttl ends, release it when the run is over. */
export interface RunLockHold {
  /** Extends the lock by its ttl from now; false when it was no longer ours (it went stale). */
  renew(): Promise<boolean>;
  /** Drops the lock if it is still ours. */
  release(): Promise<void>;
}

const RENEW = {
  name: 'stowageLockRenew',
  lua: `if redis.call('GET', ARGV[1]) == ARGV[2] then return redis.call('PEXPIRE', ARGV[1], ARGV[3]) end return 0`,
};
const RELEASE = {
  name: 'stowageLockRelease',
  lua: `if redis.call('GET', ARGV[1]) == ARGV[2] then return redis.call('DEL', ARGV[1]) end return 0`,
};

/** A named lock in Redis, exclusive across every instance using the same URL and name. */
export class RedisRunLock {
  private readonly redis: RedisConnection;
  private readonly key: string;

  /** `name` is the Redis key of the lock, e.g. `stowage:lock:lifecycle`. */
  constructor(url: string, name: string) {
    this.redis = new RedisConnection(url, `run lock ${name}`);
    this.key = name;
    this.redis.define(RENEW);
    this.redis.define(RELEASE);
  }

  /** Takes the lock for `ttlMs` unless another instance holds it (then undefined). */
  async tryAcquire(ttlMs: number): Promise<RunLockHold | undefined> {
    if (!Number.isSafeInteger(ttlMs) || ttlMs <= 0) throw new StorageError('E_INVALID_ARGUMENT', `a lock's ttl must be a whole number of ms > 0, not ${ttlMs}`);
    const token = randomUUID();
    const taken = await this.redis.run((client) => client.set(this.key, token, 'PX', ttlMs, 'NX'));
    if (taken !== 'OK') return undefined;
    const args = [this.key, token, String(ttlMs)];
    return {
      renew: async () => (await this.redis.eval(RENEW.name, args)) === 1,
      release: async () => {
        await this.redis.eval(RELEASE.name, args);
      },
    };
  }

  /** Closes the connection (a lock still held lapses at the end of its ttl). */
  async close(): Promise<void> {
    await this.redis.close();
  }
}
