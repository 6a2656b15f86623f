/**
 * A process that queues writes into an outbox whose backend is down, for the crash tests:
 * it prints `ack <i>` once write i resolved as queued, and SIGKILLs itself at the durable
 * step CRASH_STEP of write CRASH_AT (or runs until the parent kills it).
 * Environment: OUTBOX_DIR, FIRST (index of the first key), COUNT, CRASH_STEP, CRASH_AT.
 */
import { isQueued, MemoryDriver, Storage, withOutbox, type SpoolStep, type WriteResult } from '../../../src/index.js';
import { crashBody, Switch } from './helpers.js';

const env = process.env;
const first = Number(env.FIRST ?? 0);
const count = Number(env.COUNT ?? 1000);
const crashAt = Number(env.CRASH_AT ?? -1);
const line = new Switch(new MemoryDriver());
line.down = true;
const storage = new Storage<WriteResult>(
  withOutbox(line, {
    dir: env.OUTBOX_DIR as string,
    memoryBytes: 64 * 1024,
    initialDelayMs: 60_000,
    onWarning: () => undefined,
    onSpoolStep: (step: SpoolStep, key: string) => {
      if (step === env.CRASH_STEP && key === `crash/${crashAt}`) process.kill(process.pid, 'SIGKILL');
    },
  }),
);

// Four writes at a time, so journal appends share fsyncs as they do under load.
for (let i = first; i < first + count; i += 4) {
  await Promise.all(
    [i, i + 1, i + 2, i + 3].filter((n) => n < first + count).map(async (n) => {
      const result = await storage.put(`crash/${n}`, crashBody(n));
      if (!isQueued(result)) throw new Error(`write ${n} was not queued`);
      process.stdout.write(`ack ${n}\n`);
    }),
  );
}
await storage.close();
