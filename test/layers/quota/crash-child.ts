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

async function step(): Promise<void> {
  const roll = random();
  try {
    if (roll < 0.55) await storage.put(key(), Buffer.alloc(Math.floor(random() * 200_000)));
    else if (roll < 0.7) await storage.delete(key());
    else if (roll < 0.85) await storage.move(key(), key());
    else await storage.copy(key(), key());
  } catch (err) {
    const code = (err as { code?: string }).code;
    // A missing source or a full quota is part of the mix; anything else is a failure.
    if (code !== 'E_NOT_FOUND' && code !== 'E_QUOTA_EXCEEDED') throw err;
  }
}

// One object before `ready`, so a kill on a loaded machine still finds something stored.
await storage.put(key(), Buffer.alloc(1000));
process.stdout.write('ready\n');
for (;;) await Promise.all([step(), step(), step(), step()]);
