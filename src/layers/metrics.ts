/**
 * A metrics layer: wraps any Driver and records each operation's latency (by backend,
 * operation and outcome) and errors by code, in Prometheus metrics. It changes no
 * behaviour: results and errors pass through untouched, and optional driver methods
 * stay absent when the driver lacks them (capabilities depend on that).
 */
import { Counter, Histogram, type Registry } from 'prom-client';
import { isStorageError } from '../core/errors.js';
import type { Driver } from '../core/types.js';

/** The metrics the layer records into. */
export interface StorageMetrics {
  latency: Histogram<'backend' | 'operation' | 'outcome'>;
  errors: Counter<'backend' | 'operation' | 'code'>;
}

/** Creates the storage metrics in `registry`. */
export function storageMetrics(registry: Registry): StorageMetrics {
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

/** Wraps `driver` so every call is measured. */
export function withMetrics(driver: Driver, metrics: StorageMetrics): Driver {
  const timed = <A extends unknown[], R>(operation: string, fn: (...args: A) => Promise<R>) => {
    // Label objects made once per operation, not per call: this wrapper runs on every storage call.
    const ok = { backend: driver.name, operation, outcome: 'ok' };
    const failed = { ...ok, outcome: 'error' };
    return async (...args: A): Promise<R> => {
      const start = performance.now();
      try {
        const result = await fn(...args);
        metrics.latency.observe(ok, (performance.now() - start) / 1000);
        return result;
      } catch (err) {
        metrics.latency.observe(failed, (performance.now() - start) / 1000);
        metrics.errors.inc({ backend: driver.name, operation, code: isStorageError(err) ? err.code : 'UNKNOWN' });
        throw err;
      }
    };
  };
  const wrapped: Driver = {
    name: driver.name,
    capabilities: driver.capabilities,
    put: timed('put', driver.put.bind(driver)),
    stat: timed('stat', driver.stat.bind(driver)),
    read: timed('read', driver.read.bind(driver)),
    delete: timed('delete', driver.delete.bind(driver)),
    deleteMany: timed('deleteMany', driver.deleteMany.bind(driver)),
    copy: timed('copy', driver.copy.bind(driver)),
    list: timed('list', driver.list.bind(driver)),
    check: timed('check', driver.check.bind(driver)),
  };
  if (driver.putFile) wrapped.putFile = timed('putFile', driver.putFile.bind(driver));
  if (driver.move) wrapped.move = timed('move', driver.move.bind(driver));
  if (driver.signedUrl) wrapped.signedUrl = timed('signedUrl', driver.signedUrl.bind(driver));
  if (driver.presignPost) wrapped.presignPost = timed('presignPost', driver.presignPost.bind(driver));
  if (driver.verify) wrapped.verify = timed('verify', driver.verify.bind(driver));
  if (driver.close) wrapped.close = driver.close.bind(driver);
  return wrapped;
}
