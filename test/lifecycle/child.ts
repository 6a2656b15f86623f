/**
 * A second process for the lock and scheduler tests:
 * - `hold <lockFile> <ttlMs>`: takes the lock, prints `held`, and waits to be killed.
 * - `schedule <root> <lockFile> <forMs>`: runs a scheduler on the fs storage at `root`
 *   (its listings slowed to 300 ms, so runs last long enough to overlap if the lock
 *   let them), printing each log line as JSON with the time it was written, then stops.
 */
import { createStorage, FileRunLock, startLifecycle, withFaults } from '../../src/index.js';

const [mode, a = '', b = '', c = ''] = process.argv.slice(2);

if (mode === 'hold') {
  const lease = await new FileRunLock(a).tryAcquire(Number(b));
  process.stdout.write(`${lease ? 'held' : 'busy'}\n`);
  setInterval(() => undefined, 60_000);
} else if (mode === 'schedule') {
  const storage = createStorage({ driver: 'fs', root: a, fsync: false }).withDriver((d) => withFaults(d, { seed: 1, rules: [{ operations: ['list'], fault: { kind: 'latency', ms: 300 } }] }));
  const line = (level: string) => (message: string) => process.stdout.write(`${JSON.stringify({ pid: process.pid, at: Date.now(), level, message })}\n`);
  const scheduler = startLifecycle(storage, [{ prefix: 'temp/', expireAfter: '1h' }], { dryRun: true, intervalMs: 50, leaseMs: 1000, lock: new FileRunLock(b), log: { info: line('info'), warn: line('warn') } });
  await new Promise((resolve) => setTimeout(resolve, Number(c)));
  await scheduler.stop();
  await storage.close();
} else {
  throw new Error(`unknown mode ${String(mode)}`);
}
