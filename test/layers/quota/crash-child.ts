/**
 * A process that changes a storage with quotas without pause, for the crash test: puts of
 * random sizes (some overwrites), deletes, moves and copies, four at a time, until the
 * parent SIGKILLs it. Environment: SEED, and ROOT (an fs storage, its counters under it)
 * or BUCKET and QUOTA_DIR (the test RGW, the counters in that folder).
 */
import { createStorage } from '../../../src/index.js';
import { s3Options } from '../../drivers/s3/env.js';
import { CRASH_RULES } from './helpers.js';

let seed = Number(process.env.SEED ?? 1);
const random = () => {
  // A small LCG: each run's sequence repeats for its seed.
  seed = (seed * 1103515245 + 12345) % 2147483648;
  return seed / 2147483648;
};
const quotas = { rules: CRASH_RULES, log: () => undefined };
const bucket = process.env.BUCKET;
const storage =
  bucket === undefined
    ? createStorage({ driver: 'fs', root: process.env.ROOT as string, quotas })
    : createStorage({ driver: 's3', ...s3Options(bucket), quotas: { ...quotas, dir: process.env.QUOTA_DIR as string } });
const key = () => `users/u${Math.floor(random() * 4)}/k${Math.floor(random() * 12)}`;

/** Runs one change; a missing source or a full quota is part of the mix, anything else a failure. */
async function tolerating(change: () => Promise<unknown>): Promise<void> {
  try {
    await change();
  } catch (err) {
    const code = (err as { code?: string }).code;
    if (code !== 'E_NOT_FOUND' && code !== 'E_QUOTA_EXCEEDED') throw err;
  }
}

async function step(): Promise<void> {
  const roll = random();
  await tolerating(() => {
    if (roll < 0.55) return storage.put(key(), Buffer.alloc(Math.floor(random() * 200_000)));
    if (roll < 0.7) return storage.delete(key());
    if (roll < 0.85) return storage.move(key(), key());
    return storage.copy(key(), key());
  });
}

// One object before `ready`, so a kill on a loaded machine still finds something stored
// (or a full folder: objects an earlier round stored).
await tolerating(() => storage.put(key(), Buffer.alloc(1000)));
process.stdout.write('ready\n');
for (;;) await Promise.all([step(), step(), step(), step()]);
