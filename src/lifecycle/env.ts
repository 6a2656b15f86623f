/**
 * The service's lifecycle settings, from the environment:
 *
 * - STOWAGE_LIFECYCLE: the rules, as a JSON array (see rules.ts); unset or empty, the
 *   service runs none.
 * - STOWAGE_LIFECYCLE_INTERVAL: time between runs, a duration like `30m` (default `1h`).
 * - STOWAGE_LIFECYCLE_DRY_RUN: `true` to only log what the rules would remove.
 * - STOWAGE_LIFECYCLE_LOCK_DIR: where the lock file goes when the backend is not the
 *   local one (default the OS temp folder). On the local backend it is
 *   `<root>/.stowage/lifecycle.lock`, beside the files it guards. A lock file keeps
 *   instances on one machine to one run at a time; instances on several machines need
 *   a lock they all reach (Redis).
 */
import { createHash } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { booleanVariable, type StorageConfig } from '../core/config.js';
import { DURATION_HELP, durationMs } from '../core/durations.js';
import { StorageError } from '../core/errors.js';
import { RedisRunLock } from '../layers/quota/redis-lock.js';
import { FileRunLock, type RunLock } from './lock.js';
import { parseLifecycleRules, type LifecycleRule } from './rules.js';

/** The lifecycle settings of the service. */
export interface LifecycleSettings {
  /** The rules, checked. */
  rules: LifecycleRule[];
  intervalMs: number;
  dryRun: boolean;
}

/** The lifecycle variables of `env`, checked (E_CONFIG_INVALID naming the variable); undefined when STOWAGE_LIFECYCLE is unset or empty. */
export function lifecycleFromEnv(env: Record<string, string | undefined>): LifecycleSettings | undefined {
  const text = env.STOWAGE_LIFECYCLE;
  if (text === undefined || text.trim() === '') return undefined;
  parseLifecycleRules(text, 'STOWAGE_LIFECYCLE');
  const interval = env.STOWAGE_LIFECYCLE_INTERVAL;
  const intervalMs = interval === undefined || interval === '' ? 3_600_000 : durationMs(interval);
  if (intervalMs === undefined || intervalMs <= 0) {
    throw new StorageError('E_CONFIG_INVALID', `invalid configuration: STOWAGE_LIFECYCLE_INTERVAL must be ${DURATION_HELP}, above 0 (got ${JSON.stringify(interval)})`, { details: { variables: ['STOWAGE_LIFECYCLE_INTERVAL'] } });
  }
  // Checked above: the same text parses to the same rules.
  return { rules: JSON.parse(text) as LifecycleRule[], intervalMs, dryRun: booleanVariable(env, 'STOWAGE_LIFECYCLE_DRY_RUN', false) };
}

/**
 * The lock of the service's `name` runs (`lifecycle`, the quota reconcile) on the
 * configured storage: in Redis when the quotas use it (STOWAGE_QUOTA_REDIS_URL), so
 * instances on every machine take turns; else a lock file in the local root, or in
 * STOWAGE_LIFECYCLE_LOCK_DIR named after the bucket and prefix (so services on other
 * storages do not wait for each other). None for the memory backend, whose objects only
 * its own process sees.
 */
export function lifecycleLock(env: Record<string, string | undefined>, config: StorageConfig, name = 'lifecycle'): RunLock | undefined {
  if (config.backend === 'memory') return undefined;
  const { endpoint, bucket, prefix } = config.s3;
  const id = createHash('sha256').update(JSON.stringify(config.backend === 'local' ? [config.local.path] : [endpoint ?? '', bucket ?? '', prefix ?? ''])).digest('hex').slice(0, 16);
  if (config.quotas?.redisUrl !== undefined) return new RedisRunLock(config.quotas.redisUrl, `stowage:lock:${name}:${id}`);
  if (config.backend === 'local') return new FileRunLock(join(config.local.path, '.stowage', `${name}.lock`));
  return new FileRunLock(join(env.STOWAGE_LIFECYCLE_LOCK_DIR || tmpdir(), `stowage-${name}-${id}.lock`));
}
