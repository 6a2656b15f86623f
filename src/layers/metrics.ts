/**
 * A metrics layer: wraps any Driver and records each operation's latency (by backend,
 * operation and outcome) and errors by code, in Prometheus metrics. It changes no
 * behaviour: results, errors and capabilities pass through untouched.
 */
import type * as PromClient from 'prom-client';
import type { Counter, Histogram, Registry } from 'prom-client';
import type { Driver } from '../core/contract.js';
import { isStorageError } from '../core/errors.js';
import { lazyModule } from '../core/lazy.js';
import { DriverLayer, type AsyncDriverOperation } from './layer.js';
import type { OutboxControl, OutboxStatus } from './outbox/control.js';
import type { QuotaControl, QuotaCounterReport } from './quota/control.js';

/** The metrics the layer records into. */
export interface StorageMetrics {
  latency: Histogram<'backend' | 'operation' | 'outcome'>;
  errors: Counter<'backend' | 'operation' | 'code'>;
}

/** prom-client, required by the first `storageMetrics` call rather than by importing Stowage. */
const promClient = lazyModule<typeof PromClient>('prom-client', 'storage metrics');

/** Creates the storage metrics in `registry`. */
export function storageMetrics(registry: Registry): StorageMetrics {
  const { Counter, Histogram } = promClient();
  return {
    latency: new Histogram({
      name: 'stowage_storage_operation_seconds',
      help: 'Latency of storage operations (for reads and writes: until the stream or body is handed over or committed)',
      labelNames: ['backend', 'operation', 'outcome'],
      buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers: [registry],
    }),
    errors: new Counter({
      name: 'stowage_storage_errors_total',
      help: 'Failed storage operations by error code',
      labelNames: ['backend', 'operation', 'code'],
      registers: [registry],
    }),
  };
}

/** Label sets of one operation, made once rather than per call: this layer runs on every storage call. */
interface OperationLabels {
  ok: { backend: string; operation: string; outcome: 'ok' };
  failed: { backend: string; operation: string; outcome: 'error' };
}

/**
 * Measures every operation of the wrapped driver, `close` excepted (releasing sockets is
 * no storage operation). Through `DriverLayer.around`, an operation added to the
 * contract is measured too without a line here.
 */
class MetricsLayer extends DriverLayer {
  readonly #metrics: StorageMetrics;
  readonly #labels = new Map<AsyncDriverOperation, OperationLabels>();

  constructor(inner: Driver, metrics: StorageMetrics) {
    super(inner);
    this.#metrics = metrics;
  }

  #labelsOf(operation: AsyncDriverOperation): OperationLabels {
    let labels = this.#labels.get(operation);
    if (!labels) {
      const ok = { backend: this.name, operation, outcome: 'ok' as const };
      labels = { ok, failed: { ...ok, outcome: 'error' } };
      this.#labels.set(operation, labels);
    }
    return labels;
  }

  protected override async around<T>(operation: AsyncDriverOperation, run: () => Promise<T>): Promise<T> {
    if (operation === 'close') return run();
    const labels = this.#labelsOf(operation);
    const start = performance.now();
    try {
      const result = await run();
      this.#metrics.latency.observe(labels.ok, (performance.now() - start) / 1000);
      return result;
    } catch (err) {
      this.#metrics.latency.observe(labels.failed, (performance.now() - start) / 1000);
      this.#metrics.errors.inc({ backend: this.name, operation, code: isStorageError(err) ? err.code : 'UNKNOWN' });
      throw err;
    }
  }
}

/** Wraps `driver` in a layer that measures every operation (see {@link StorageMetrics}). */
export function withMetrics(driver: Driver, metrics: StorageMetrics): Driver {
  return new MetricsLayer(driver, metrics);
}

/**
 * The outbox's metrics in `registry`, read from its status at each scrape: gauges of the
 * pending entries, their bytes and the oldest one's age, and counters of the entries
 * delivered and dead-lettered by this process.
 */
export function outboxMetrics(registry: Registry, outbox: OutboxControl): void {
  const { Counter, Gauge } = promClient();
  type Pick = (status: OutboxStatus) => number;
  const gauge = (name: string, help: string, pick: Pick) =>
    new Gauge({ name, help, registers: [registry], async collect() {
      this.set(pick(await outbox.status()));
    } });
  const counter = (name: string, help: string, pick: Pick) =>
    new Counter({ name, help, registers: [registry], async collect() {
      // The count is the outbox's own: the counter shows it as it is.
      this.reset();
      this.inc(pick(await outbox.status()));
    } });
  gauge('stowage_outbox_pending', 'Writes queued in the outbox, not yet delivered', (s) => s.pending);
  gauge('stowage_outbox_pending_bytes', 'Bytes of the writes queued in the outbox', (s) => s.pendingBytes);
  gauge('stowage_outbox_held_sessions', 'Upload sessions begun while the backend was down, held in the outbox until they complete', (s) => s.heldSessions);
  gauge('stowage_outbox_oldest_seconds', 'Age of the oldest write queued in the outbox (0 when none)', (s) => s.oldestAgeSeconds);
  counter('stowage_outbox_delivered_total', 'Queued writes delivered and verified by this process', (s) => s.delivered);
  counter('stowage_outbox_dead_total', 'Queued writes this process moved to the dead letters', (s) => s.deadLettered);
}

/**
 * Registers gauges of a quota layer on `registry`, read at each scrape, one series per
 * quota pattern (the label is the pattern, never a folder of a user): for a pattern with
 * `*`, the fullest folder's usage and the per-folder limit, and how many folders are past
 * the threshold.
 */
export function quotaMetrics(registry: Registry, quota: QuotaControl): void {
  const { Gauge } = promClient();
  // One reading of the counters serves every gauge of a scrape.
  let reading: { at: number; rows: Promise<Map<string, QuotaCounterReport[]>> } | undefined;
  const byPattern = (): Promise<Map<string, QuotaCounterReport[]>> => {
    if (reading === undefined || Date.now() - reading.at > 1000) {
      const rows = quota.counters().then((counters) => {
        const groups = new Map<string, QuotaCounterReport[]>(quota.matcher.patterns.map((p) => [p, []]));
        for (const c of counters) groups.get(c.pattern)?.push(c);
        return groups;
      });
      reading = { at: Date.now(), rows };
    }
    return reading.rows;
  };
  const ratio = (c: QuotaCounterReport) => Math.max(c.maxBytes ? c.usedBytes / c.maxBytes : 0, c.maxObjects ? c.usedObjects / c.maxObjects : 0);
  const gauge = (name: string, help: string, pick: (pattern: string, rows: QuotaCounterReport[]) => number | undefined) =>
    new Gauge({ name, help, labelNames: ['quota'], registers: [registry], async collect() {
      this.reset();
      for (const [pattern, rows] of await byPattern()) {
        const value = pick(pattern, rows);
        if (value !== undefined) this.set({ quota: pattern }, value);
      }
    } });
  const fullest = (rows: QuotaCounterReport[]) => rows.reduce<QuotaCounterReport | undefined>((top, c) => (top === undefined || ratio(c) > ratio(top) ? c : top), undefined);
  gauge('stowage_quota_used_bytes', 'Bytes used under the quota (for a pattern with *, its fullest folder)', (_p, rows) => fullest(rows)?.usedBytes ?? 0);
  gauge('stowage_quota_limit_bytes', 'The byte limit of the quota (per folder for a pattern with *)', (p) => quota.matcher.limitOf(p)?.maxBytes);
  gauge('stowage_quota_used_objects', 'Objects under the quota (for a pattern with *, its fullest folder)', (_p, rows) => fullest(rows)?.usedObjects ?? 0);
  gauge('stowage_quota_limit_objects', 'The object limit of the quota (per folder for a pattern with *)', (p) => quota.matcher.limitOf(p)?.maxObjects);
  gauge('stowage_quota_folders_past_threshold', 'Folders of the quota past its warnAt threshold or full', (_p, rows) => rows.filter((c) => c.level !== 'ok').length);
}
