/**
 * The service's scheduled reconcile (STOWAGE_QUOTA_RECONCILE_INTERVAL): every interval,
 * one instance at a time (the lock the lifecycle runs use: Redis when the quotas use it,
 * else a lock file), recompute the quotas' usage from a listing and repair the drift,
 * with one log line per run. Without the variable the service never reconciles on its own.
 */
import type { RunLock } from '../../lifecycle/lock.js';
import type { QuotaControl } from './control.js';

/** How long a reconcile holds its lock; it is renewed at a third of that while the listing runs. */
const LEASE_MS = 10 * 60_000;

/** A running schedule: stop it (a run in progress finishes first). */
export interface ReconcileSchedule {
  stop(): Promise<void>;
}

/** Reconciles `control` every `intervalMs`, the first time one interval after the start. */
export function scheduleReconcile(control: QuotaControl, opts: { intervalMs: number; lock?: RunLock; log: { info(line: string): void; warn(line: string): void } }): ReconcileSchedule {
  let running: Promise<void> | undefined;
  const abort = new AbortController();
  const once = async () => {
    const lease = await opts.lock?.tryAcquire(LEASE_MS);
    if (opts.lock && lease === undefined) return opts.log.info('quota reconcile skipped: another instance is running it');
    const renew = lease && setInterval(() => void lease.renew().catch(() => undefined), LEASE_MS / 3);
    try {
      const report = await control.reconcile({ signal: abort.signal });
      const line = `quota reconcile in ${report.seconds.toFixed(1)} s: ${report.objects} objects, ${report.drift.length} of ${report.counters} quota folders drifted${report.repaired ? ' (repaired)' : ''}`;
      if (report.drift.length > 0) opts.log.warn(line);
      else opts.log.info(line);
    } finally {
      clearInterval(renew);
      await lease?.release().catch(() => undefined);
    }
  };
  const timer = setInterval(() => {
    running ??= once()
      .catch((err: unknown) => opts.log.warn(`quota reconcile failed: ${(err as Error).message}`))
      .finally(() => (running = undefined));
  }, opts.intervalMs);
  timer.unref();
  return {
    async stop() {
      clearInterval(timer);
      abort.abort();
      await running;
    },
  };
}
