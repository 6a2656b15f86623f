/**
 * The lifecycle scheduler: runs the rules at start and then every interval, one run at a
 * time across every instance that shares its {@link RunLock}. The lease is renewed while
 * a run goes on; a run that loses it (its renewals failed long enough for another runner
 * to take over) is cancelled, so two runs never overlap for long. Each run writes one log
 * line and, given a Prometheus registry, counts what it removed.
 */
import type * as PromClient from 'prom-client';
import type { Registry } from 'prom-client';
import { errorMessage } from '../core/errors.js';
import { lazyModule } from '../core/lazy.js';
import type { Storage } from '../core/storage.js';
import type { WriteResult } from '../core/types.js';
import type { RunLock } from './lock.js';
import { checkLifecycleRules, type CheckedRule, type LifecycleRule } from './rules.js';
import { runCheckedRules, type LifecycleAction, type LifecycleReport, type RunLifecycleOptions } from './run.js';

/** Where the scheduler writes its line per run: `console`, a pino logger (Fastify's `app.log`), ... */
export interface LifecycleLogger {
  info(message: string): void;
  warn(message: string): void;
}

/** Options of {@link startLifecycle}. */
export interface StartLifecycleOptions {
  /** Only report what would be removed. */
  dryRun: boolean;
  /** Time between the starts of two runs (default 1 hour); the first run starts at once. */
  intervalMs?: number;
  /** Keeps runs of every instance sharing it one at a time (a {@link FileRunLock}, a `RedisRunLock`); without one, runs are one at a time in this process only. */
  lock?: RunLock;
  /** The lease taken on the lock (default 60 s), renewed every third of it while a run goes on. */
  leaseMs?: number;
  /** Gets one line per run (default none). */
  log?: LifecycleLogger;
  /** Registers the lifecycle metrics here (see the README's metrics): the service passes the registry `/metrics` serves. */
  registry?: Registry;
}

/** A started scheduler. */
export interface LifecycleScheduler {
  /** Stops scheduling, cancels a run in progress (after its current batch) and waits for it. */
  stop(): Promise<void>;
  /** Runs now (or joins the run in progress here); undefined when another instance holds the lock, or after `stop`. */
  runNow(): Promise<LifecycleReport | undefined>;
}

const DEFAULT_INTERVAL_MS = 3_600_000;
const DEFAULT_LEASE_MS = 60_000;

/** prom-client, required only when a registry is given. */
const promClient = lazyModule<typeof PromClient>('prom-client', 'lifecycle metrics');

interface LifecycleMetrics {
  run(outcome: 'ok' | 'failed' | 'locked', dryRun: boolean): void;
  removed(prefix: string, action: LifecycleAction, objects: number, bytes: number): void;
}

function lifecycleMetrics(registry: Registry): LifecycleMetrics {
  const { Counter } = promClient();
  const runs = new Counter({ name: 'stowage_lifecycle_runs_total', help: 'Lifecycle runs by outcome (ok, failed: a rule failed, locked: another instance was running)', labelNames: ['outcome', 'dry_run'], registers: [registry] });
  // The rule label is the rule's prefix, never a key: the label set stays as small as the rules.
  const objects = new Counter({ name: 'stowage_lifecycle_removed_objects_total', help: 'Objects, multipart uploads and upload sessions removed by lifecycle rules (dry runs count nothing)', labelNames: ['rule', 'action'], registers: [registry] });
  const bytes = new Counter({ name: 'stowage_lifecycle_removed_bytes_total', help: 'Bytes freed by lifecycle rules (multipart uploads count 0: S3 lists them without sizes)', labelNames: ['rule', 'action'], registers: [registry] });
  return {
    run: (outcome, dryRun) => runs.inc({ outcome, dry_run: String(dryRun) }),
    removed: (rule, action, n, b) => {
      objects.inc({ rule, action }, n);
      bytes.inc({ rule, action }, b);
    },
  };
}

/** The one line a run is logged with: what each rule removed, dry or not, how long it took. */
export function describeRun(report: LifecycleReport): string {
  const rules = report.rules.map((rule) => {
    const totals = Object.entries(rule.totals).map(([action, t]) => `${action} ${t.objects} (${t.bytes} bytes)`);
    const did = totals.length > 0 ? totals.join(', ') : 'nothing';
    return `rule ${rule.index} ${JSON.stringify(rule.prefix)}: ${did}${rule.error ? `, failed: ${rule.error.code} ${rule.error.message}` : ''}`;
  });
  return `lifecycle ${report.dryRun ? 'dry run (nothing removed)' : 'run'} in ${report.durationMs} ms: ${rules.join('; ') || 'no rules'}`;
}

/** Options of {@link runLocked}. */
export interface RunLockedOptions extends RunLifecycleOptions {
  /** The lock to hold for the run (none: the run just runs). */
  lock?: RunLock | undefined;
  /** The lease taken on the lock (default 60 s), renewed every third of it. */
  leaseMs?: number;
  /** Told when releasing the lock fails (the lease then lapses on its own). */
  log?: LifecycleLogger | undefined;
}

/**
 * One run of checked rules holding `lock` for all of it: the lease is renewed every third
 * of `leaseMs`, a lease lost (renewals failing until another runner took over) cancels
 * the run after its current batch, and the lease is released at the end. Resolves
 * undefined, having looked at nothing, while another runner holds the lock; a lock that
 * cannot be reached (its folder unwritable, Redis down) rejects.
 */
export async function runLocked(storage: Storage<WriteResult>, checked: readonly CheckedRule[], opts: RunLockedOptions): Promise<LifecycleReport | undefined> {
  const leaseMs = opts.leaseMs ?? DEFAULT_LEASE_MS;
  const lease = opts.lock ? await opts.lock.tryAcquire(leaseMs) : undefined;
  if (opts.lock && !lease) return undefined;
  const loss = new AbortController();
  const lost = () => loss.abort(new Error('the lifecycle lock was lost (not renewed in time), so another instance may run'));
  const renewal = lease && setInterval(() => void lease.renew().then((held) => held || lost(), lost), Math.max(1, Math.floor(leaseMs / 3)));
  try {
    const { dryRun, now, maxItems } = opts;
    const signal = opts.signal ? AbortSignal.any([opts.signal, loss.signal]) : loss.signal;
    return await runCheckedRules(storage, checked, { dryRun, now, maxItems, signal });
  } finally {
    if (renewal) clearInterval(renewal);
    await lease?.release().catch((err: unknown) => opts.log?.warn(`lifecycle: releasing the lock failed: ${errorMessage(err)}`));
  }
}

/**
 * Runs lifecycle rules on `storage` on a schedule (see {@link StartLifecycleOptions}). The
 * rules are checked now: a bad one throws E_CONFIG_INVALID and nothing starts.
 */
export function startLifecycle(storage: Storage<WriteResult>, rules: readonly LifecycleRule[], opts: StartLifecycleOptions): LifecycleScheduler {
  const checked = checkLifecycleRules(rules);
  const intervalMs = opts.intervalMs ?? DEFAULT_INTERVAL_MS;
  const leaseMs = opts.leaseMs ?? DEFAULT_LEASE_MS;
  if (!Number.isFinite(intervalMs) || intervalMs <= 0) throw new RangeError('intervalMs must be a positive number of milliseconds');
  if (!Number.isFinite(leaseMs) || leaseMs <= 0) throw new RangeError('leaseMs must be a positive number of milliseconds');
  const metrics = opts.registry ? lifecycleMetrics(opts.registry) : undefined;
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  let current: { done: Promise<LifecycleReport | undefined>; controller: AbortController } | undefined;

  const runOnce = async (controller: AbortController): Promise<LifecycleReport | undefined> => {
    const report = await runLocked(storage, checked, { dryRun: opts.dryRun, lock: opts.lock, leaseMs, signal: controller.signal, log: opts.log });
    if (report === undefined) {
      metrics?.run('locked', opts.dryRun);
      opts.log?.info('lifecycle run skipped: another instance holds the lifecycle lock');
      return undefined;
    }
    const failed = report.rules.some((r) => r.error);
    metrics?.run(failed ? 'failed' : 'ok', opts.dryRun);
    if (!opts.dryRun) for (const rule of report.rules) for (const [action, t] of Object.entries(rule.totals)) metrics?.removed(rule.prefix, action as LifecycleAction, t.objects, t.bytes);
    if (failed) opts.log?.warn(describeRun(report));
    else opts.log?.info(describeRun(report));
    return report;
  };

  const runNow = (): Promise<LifecycleReport | undefined> => {
    if (current) return current.done;
    if (stopped) return Promise.resolve(undefined);
    const controller = new AbortController();
    const done = runOnce(controller)
      .catch((err: unknown) => {
        // The lock itself failed (its folder unwritable, Redis down): this run is skipped, the next one tries again.
        metrics?.run('failed', opts.dryRun);
        opts.log?.warn(`lifecycle run failed: ${errorMessage(err)}`);
        return undefined;
      })
      .finally(() => (current = undefined));
    current = { done, controller };
    return done;
  };

  const schedule = (delay: number) => {
    timer = setTimeout(() => {
      const started = Date.now();
      void runNow().then(() => stopped || schedule(Math.max(0, started + intervalMs - Date.now())));
    }, delay);
    // The schedule alone keeps no process alive (the service's server does); stop() ends it.
    timer.unref();
  };
  schedule(0);

  return {
    runNow,
    stop: async () => {
      stopped = true;
      clearTimeout(timer);
      current?.controller.abort(new Error('the lifecycle scheduler stopped'));
      await current?.done;
    },
  };
}
