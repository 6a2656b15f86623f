/**
 * A process that changes an fs storage with quotas without pause, for the crash test:
 * puts of random sizes (some overwrites), deletes, moves and copies, four at a time, until
 * the parent SIGKILLs it. Environment: ROOT, SEED.
 */
import { createStorage } from '../../../src/index.js';
import { CRASH_RULES } from './helpers.js';

const root = process.env.ROOT as string;
let seed = Number(process.env.SEED ?? 1);
const random = () => {
  // A small LCG: each run's sequence repeats for its seed.
  seed = (seed * 1103515245 + 12345) % 2147483648;
  return seed / 2147483648;
};
const storage = createStorage({ driver: 'fs', root, quotas: { rules: CRASH_RULES, log: () => undefined } });
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
