/**
 * Building a quota layer from settings: which store keeps the counters. The embedded
 * store lives under the fs root's `.stowage/quota/` (or in `dir`); several instances
 * share Redis (`redisUrl`). A backend with no folder of its own (S3, memory) needs `dir`
 * or `redisUrl`, since its counters must outlive the process.
 */
import { join, resolve } from 'node:path';
import type { Driver } from '../../core/contract.js';
import { StorageError } from '../../core/errors.js';
import { RESERVED_SEGMENT } from '../../core/keys.js';
import type { QuotaOptions } from './control.js';
import { EmbeddedQuotaStore } from './embedded-store.js';
import { QuotaLayer } from './layer.js';
import type { QuotaStore } from './store.js';

/** The `quotas` option of `createStorage`: the rules, and where the counters live. */
export interface QuotaSetup extends Omit<QuotaOptions, 'store'> {
  /** A store of your own (it wins over `dir` and `redisUrl`). */
  store?: QuotaStore | Promise<QuotaStore>;
  /** The embedded store's folder (default for fs: `<root>/.stowage/quota`); one process uses it at a time. */
  dir?: string;
  /** Counters shared by every instance, in Redis at this URL (`redis://host:6379/0`). */
  redisUrl?: string;
  /** With Redis: how long a dead instance's writes in progress hold their keys and reservations (ms, default 30 s). */
  leaseMs?: number;
}

/** The folder of the embedded store of an fs root. */
export function embeddedQuotaDir(fsRoot: string): string {
  return join(resolve(fsRoot), RESERVED_SEGMENT, 'quota');
}

/** The store `setup` names, for a backend whose fs root (if any) is `fsRoot`. */
export async function quotaStoreFor(setup: QuotaSetup, fsRoot: string | undefined): Promise<QuotaStore> {
  // Redis (and ioredis) load only when asked for.
  if (setup.store) return setup.store;
  if (setup.redisUrl !== undefined) {
    const { RedisQuotaStore } = await import('./redis-store.js');
    return new RedisQuotaStore({ url: setup.redisUrl, ...(setup.leaseMs === undefined ? {} : { leaseMs: setup.leaseMs }) });
  }
  const dir = setup.dir ?? (fsRoot === undefined ? undefined : embeddedQuotaDir(fsRoot));
  if (dir === undefined) throw noQuotaStore();
  return new EmbeddedQuotaStore(dir);
}

function noQuotaStore(): StorageError {
  return new StorageError('E_CONFIG_INVALID', 'quotas on a backend other than fs need a place for their counters: a folder (dir, STOWAGE_QUOTA_DIR) for one instance, or Redis (redisUrl, STOWAGE_QUOTA_REDIS_URL) shared by several');
}

/** The quota layer of `setup` around `driver`. */
export function quotaLayerFor(driver: Driver, setup: QuotaSetup, fsRoot: string | undefined): QuotaLayer {
  if (setup.store === undefined && setup.redisUrl === undefined && setup.dir === undefined && fsRoot === undefined) throw noQuotaStore();
  const { rules, failOpen, onAlert, log } = setup;
  // A stat of S3 is a request as slow as the write; one of fs, a system call that queues
  // behind the writes' fsyncs on libuv's threads: the index spares both.
  const index = setup.index ?? true;
  if (setup.leaseMs !== undefined && setup.redisUrl === undefined) throw new StorageError('E_CONFIG_INVALID', 'a quota lease (leaseMs, STOWAGE_QUOTA_LEASE_SECONDS) applies to the Redis store only: set redisUrl (STOWAGE_QUOTA_REDIS_URL) too');
  return new QuotaLayer(driver, { rules, failOpen, onAlert, log, index, store: quotaStoreFor(setup, fsRoot) });
}
