/** Shared set-up of the quota tests: an fs storage with quotas in a fresh folder, and readings of its counters. */
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createStorage, quotaOf, type QuotaAlert, type QuotaControl, type QuotaRules, type Storage } from '../../../src/index.js';
import type { QuotaSetup } from '../../../src/layers/quota/setup.js';

/** A fresh folder for one test. */
export function tempRoot(name: string): Promise<string> {
  return mkdtemp(join(tmpdir(), `stowage-quota-${name}-`));
}

/** An fs storage at `root` with `rules`, its control, and the alerts and log lines it gave. */
export function quotaStorage(root: string, rules: QuotaRules, setup: Partial<QuotaSetup> = {}): { storage: Storage; control: QuotaControl; alerts: QuotaAlert[]; logs: string[] } {
  const alerts: QuotaAlert[] = [];
  const logs: string[] = [];
  const storage = createStorage({ driver: 'fs', root, quotas: { rules, onAlert: (a) => alerts.push(a), log: (line) => logs.push(line), ...setup } });
  return { storage, control: quotaOf(storage.driver) as QuotaControl, alerts, logs };
}

/** `{ bytes, objects }` of the counter of `pattern` for `prefix`, as the control reports it (zeros when untouched). */
export async function used(control: QuotaControl, prefix: string, pattern = prefix): Promise<{ bytes: number; objects: number; reservedBytes: number }> {
  const report = (await control.usage(prefix)).find((c) => c.pattern === pattern && c.prefix === prefix);
  return { bytes: report?.usedBytes ?? 0, objects: report?.usedObjects ?? 0, reservedBytes: report?.reservedBytes ?? 0 };
}

/** Bytes of `n` of the letter `c`. */
export function bytes(n: number, c = 'x'): Buffer {
  return Buffer.alloc(n, c);
}

/** The quotas of the crash test: small enough that refusals are part of the mix. */
export const CRASH_RULES: QuotaRules = { '': { maxBytes: 3_000_000 }, 'users/*/': { maxBytes: 1_000_000, maxObjects: 10 } };
