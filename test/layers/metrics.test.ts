/**
 * The metrics layer through the documented `storage.withDriver(d => withMetrics(d, m))`:
 * each operation is counted once under the backend's name, the operation and its
 * outcome, failures by error code, and the storage behaves as it did without it.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Registry } from 'prom-client';
import { createStorage, storageMetrics, withMetrics } from '../../src/index.js';
import { rejectsWith } from '../conformance/harness.js';

/** The sample count of the latency histogram per `operation/outcome`, and the error counter per `operation/code`. */
async function recorded(registry: Registry): Promise<{ latency: Record<string, number>; errors: Record<string, number> }> {
  const metrics = await registry.getMetricsAsJSON();
  const latency: Record<string, number> = {};
  const errors: Record<string, number> = {};
  for (const metric of metrics) {
    for (const value of metric.values as { value: number; labels: Record<string, string>; metricName?: string }[]) {
      const { backend, operation, outcome, code } = value.labels;
      assert.equal(backend, 'memory', 'every sample is labelled with the backend');
      if (metric.name === 'stowage_storage_operation_seconds' && value.metricName === 'stowage_storage_operation_seconds_count') latency[`${operation}/${outcome}`] = value.value;
      if (metric.name === 'stowage_storage_errors_total') errors[`${operation}/${code}`] = value.value;
    }
  }
  return { latency, errors };
}

describe('metrics layer', () => {
  it('counts each operation once by backend, operation and outcome, and errors by code', async () => {
    const registry = new Registry();
    const plain = createStorage({ driver: 'memory' });
    const storage = plain.withDriver((d) => withMetrics(d, storageMetrics(registry)));
    await storage.put('a.txt', 'a');
    await storage.put('b.txt', 'b');
    assert.equal((await storage.get('a.txt')).toString(), 'a');
    await rejectsWith(storage.stat('missing.txt'), 'E_NOT_FOUND');
    await rejectsWith(storage.put('a.txt', 'again', { ifNoneMatch: '*' }), 'E_ALREADY_EXISTS');
    await storage.copy('a.txt', 'c.txt');
    await storage.move('c.txt', 'd.txt');
    assert.deepEqual(await storage.incompleteUploads(), []);
    const source = createStorage({ driver: 'memory' });
    await source.put('s.txt', 's');
    assert.equal((await storage.copyFrom(source, 's.txt')).copiedBy, 'stream');
    await storage.list();
    await storage.close();
    const { latency, errors } = await recorded(registry);
    assert.deepEqual(latency, {
      // Two puts, and the streamed copy from the other storage.
      'put/ok': 3,
      'put/error': 1,
      'read/ok': 1,
      'stat/error': 1,
      // move on memory is Storage's copy and delete, each measured as itself.
      'copy/ok': 2,
      'delete/ok': 1,
      // ...then the stored image variants of both keys are removed.
      'deleteInternal/ok': 1,
      // A copy from another storage asks the driver first (memory copies inside no service), then streams.
      'copyFrom/ok': 1,
      'list/ok': 1,
    });
    assert.deepEqual(errors, { 'stat/E_NOT_FOUND': 1, 'put/E_ALREADY_EXISTS': 1 });
  });

  it('measures operations the driver does natively under their own names', async () => {
    const registry = new Registry();
    const storage = createStorage({ driver: 'memory' }).withDriver((d) => withMetrics(d, storageMetrics(registry)));
    await storage.verify();
    await storage.health();
    const { latency } = await recorded(registry);
    assert.deepEqual(latency, { 'verify/ok': 1, 'check/ok': 1 });
  });

  it('changes nothing the storage reports about itself', async () => {
    const plain = createStorage({ driver: 'memory', baseUrl: 'http://127.0.0.1:8080', signingSecret: 'metrics-test-secret-0123456789' });
    const measured = plain.withDriver((d) => withMetrics(d, storageMetrics(new Registry())));
    assert.equal(measured.backend, 'memory');
    assert.deepEqual(measured.capabilities, plain.capabilities);
    const link = await measured.signedUrl('a.txt', { method: 'GET' });
    assert.ok(link.url.startsWith('http://127.0.0.1:8080/files/a.txt?'));
  });
});
