/**
 * `stowage quota status|reconcile` as a real process on an fs storage with quotas:
 * status reads the counters (read-only from disk while another process holds them),
 * reconcile reports drift as a dry run and repairs it with --yes; CLI writes are counted.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { createStorage, quotaOf } from '../../src/index.js';
import { cli } from './run.js';

const RULES = JSON.stringify({ 'users/*/': { maxBytes: 1000 } });

describe('stowage quota', () => {
  let root: string;
  let env: Record<string, string>;
  before(async () => {
    root = await mkdtemp(join(tmpdir(), 'stowage-cli-quota-'));
    env = { STORAGE_LOCAL_PATH: root, STOWAGE_QUOTAS: RULES };
  });
  after(async () => rm(root, { recursive: true, force: true }));

  it('counts CLI writes and refuses one that does not fit (exit code and reason)', async () => {
    const file = join(root, '..', `quota-cli-${process.pid}.bin`);
    await writeFile(file, Buffer.alloc(600));
    try {
      assert.equal((await cli(['put', file, 'users/ann/a.bin'], { env })).code, 0);
      const refused = await cli(['put', file, 'users/ann/b.bin'], { env });
      assert.notEqual(refused.code, 0);
      assert.match(refused.stderr, /quota "users\/\*\/" \(for users\/ann\/\) is full/);
    } finally {
      await rm(file, { force: true });
    }
  });

  it('shows every quota folder with its usage', async () => {
    const status = await cli(['quota', 'status', '--json'], { env });
    assert.equal(status.code, 0, status.stderr);
    const report = JSON.parse(status.stdout) as { store: string; readOnly: boolean; counters: { prefix: string; usedBytes: number; maxBytes: number }[] };
    assert.equal(report.store, 'embedded');
    assert.deepEqual(report.counters.map((c) => [c.prefix, c.usedBytes, c.maxBytes]), [['users/ann/', 600, 1000]]);
    const text = await cli(['quota', 'status'], { env });
    assert.match(text.stdout, /users\/\*\/\s+users\/ann\/\s+600 B \/ 1000 B \(60 %\)/);
  });

  it('reads the counters from disk while another process holds them', async () => {
    const holder = createStorage({ driver: 'fs', root, quotas: { rules: JSON.parse(RULES) as never, log: () => undefined } });
    await quotaOf(holder.driver)?.open();
    try {
      const status = await cli(['quota', 'status', '--json'], { env });
      assert.equal(status.code, 0, status.stderr);
      assert.equal((JSON.parse(status.stdout) as { readOnly: boolean }).readOnly, true);
      const write = await cli(['rm', '--yes', 'users/ann/a.bin'], { env });
      assert.match(write.stderr, /in use by process \d+/);
    } finally {
      await holder.close();
    }
  });

  it('reports drift as a dry run, and repairs it with --yes', async () => {
    await writeFile(join(root, 'users', 'ann', 'sneaked.bin'), Buffer.alloc(100));
    const dry = await cli(['quota', 'reconcile'], { env });
    assert.equal(dry.code, 0, dry.stderr);
    assert.match(dry.stdout, /1 quota folder drifted of 1 \(dry run: add --yes to repair\)/);
    assert.match(dry.stdout, /users\/ann\/\s+600 B -> 700 B\s+1 -> 2/);
    const fixed = await cli(['quota', 'reconcile', '--yes', '--json'], { env });
    assert.equal((JSON.parse(fixed.stdout) as { repaired: boolean }).repaired, true);
    assert.match((await cli(['quota', 'reconcile'], { env })).stdout, /0 quota folders drifted/);
  });

  it('says how to configure quotas when there are none', async () => {
    const none = await cli(['quota', 'status'], { env: { STORAGE_LOCAL_PATH: root } });
    assert.equal(none.code, 2);
    assert.match(none.stderr, /no quotas are configured: set STOWAGE_QUOTAS/);
  });
});
