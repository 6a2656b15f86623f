/**
 * `stowage gc run` as a real process: rules from --rules (JSON or @file) or
 * STOWAGE_LIFECYCLE, a dry run unless --yes, a report per rule for people and as JSON,
 * exit 1 when a rule fails and 2 for bad or missing rules; `gc orphans --min-age`; the
 * service's lifecycle lock held while removing.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { createStorage, FileRunLock, type LifecycleReport, type Storage } from '../../src/index.js';
import { cli } from '../cli/run.js';

let dir: string;
let root: string;
let loc: string;
let storage: Storage;

async function putOld(key: string, body: string): Promise<void> {
  await storage.put(key, body);
  const when = new Date(Date.now() - 3 * 3_600_000);
  await utimes(join(root, key), when, when);
}

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'stowage-lifecycle-cli-'));
  root = join(dir, 'store');
  loc = `local:${root}`;
  storage = createStorage({ driver: 'fs', root });
  await putOld('temp/a', '123');
  await putOld('temp/b', '4567');
  await storage.put('temp/young', 'y');
  await putOld('photos/used.jpg', 'u');
  await putOld('photos/orphan.jpg', 'o');
  await storage.put('photos/new.jpg', 'n');
});
after(async () => rm(dir, { recursive: true, force: true }));

describe('stowage gc run', () => {
  it('reports what the rules would remove, removes it with --yes, and takes rules from a file or STOWAGE_LIFECYCLE', async () => {
    const keep = join(dir, 'keep.txt');
    await writeFile(keep, 'photos/used.jpg\n');
    const rules = JSON.stringify([{ prefix: 'temp/', expireAfter: '2h' }, { prefix: 'photos/', orphans: { keep, minAge: '1h' } }]);
    const dry = await cli(['gc', 'run', loc, '--rules', rules]);
    assert.equal(dry.code, 0, dry.stderr);
    assert.match(dry.stdout, /^rule 0 "temp\/" \(expire\)\n {2}expire: would delete 2 \(7 B\) \(dry run: add --yes to act\)\n {4}temp\/a\n {4}temp\/b\nrule 1 "photos\/" \(orphans\)\n {2}orphan: would delete 1 \(1 B\) \(dry run: add --yes to act\)\n {4}photos\/orphan\.jpg\n$/);
    assert.equal(await storage.exists('temp/a'), true, 'a dry run removes nothing');

    const file = join(dir, 'rules.json');
    await writeFile(file, rules);
    const acted = await cli(['gc', 'run', loc, '--rules', `@${file}`, '--yes', '--json']);
    assert.equal(acted.code, 0, acted.stderr);
    const report = JSON.parse(acted.stdout) as LifecycleReport;
    assert.equal(report.dryRun, false);
    assert.deepEqual(report.rules.map((r) => r.totals), [{ expire: { objects: 2, bytes: 7 } }, { orphan: { objects: 1, bytes: 1 } }]);
    assert.deepEqual([await storage.exists('temp/a'), await storage.exists('temp/young'), await storage.exists('photos/orphan.jpg'), await storage.exists('photos/new.jpg')], [false, true, false, true]);

    const fromEnv = await cli(['gc', 'run', loc], { env: { STOWAGE_LIFECYCLE: JSON.stringify([{ prefix: 'temp/', expireAfter: '0s' }]) } });
    assert.equal(fromEnv.code, 0, fromEnv.stderr);
    assert.match(fromEnv.stdout, /expire: would delete 1 \(1 B\)[^\n]*\n {4}temp\/young/);
  });

  it('exits 1 when a rule fails, after running the others; 2 for bad or missing rules', async () => {
    const failing = await cli(['gc', 'run', loc, '--rules', JSON.stringify([{ prefix: 'photos/', orphans: { keep: join(dir, 'none.txt') } }, { prefix: 'temp/', expireAfter: '0s' }])]);
    assert.equal(failing.code, 1);
    assert.match(failing.stdout, /rule 0 "photos\/" \(orphans\): failed: lifecycle rule 0: cannot read the keep list/);
    assert.match(failing.stdout, /rule 1 "temp\/" \(expire\)\n {2}expire: would delete 1/);
    assert.match(failing.stderr, /^stowage: rule 0 failed: /);
    const bad = await cli(['gc', 'run', loc, '--rules', '[{"prefix":"temp/","expireAfter":"soon"}]', '--json']);
    assert.equal(bad.code, 2);
    assert.deepEqual(JSON.parse(bad.stderr), { code: 'E_CONFIG_INVALID', message: 'invalid lifecycle rules in --rules: rule 0 field expireAfter must be a duration like 90s, 30m, 24h or 7d' });
    const none = await cli(['gc', 'run', loc], { env: { STOWAGE_LIFECYCLE: '' } });
    assert.equal(none.code, 2);
    assert.match(none.stderr, /gc run needs rules/);
  });

  it('gc orphans keeps objects younger than --min-age, and refuses an empty keep list', async () => {
    await putOld('docs/old-orphan', 'x');
    await storage.put('docs/young-orphan', 'y');
    const report = await cli(['gc', 'orphans', `${loc}#docs/`, '--keep', '-', '--min-age', '1h', '--json'], { input: 'docs/other\n' });
    assert.equal(report.code, 0, report.stderr);
    assert.deepEqual(JSON.parse(report.stdout), { acted: false, kept: 1, objects: [{ key: 'docs/old-orphan', size: 1 }], bytes: 1 });
    const empty = await cli(['gc', 'orphans', `${loc}#docs/`, '--keep', '-', '--yes'], { input: '\n' });
    assert.equal(empty.code, 2);
    assert.match(empty.stderr, /keep list is empty; refusing to treat every object under "docs\/" as an orphan/);
    assert.equal(await storage.exists('docs/young-orphan'), true);
  });

  it("takes the service's lifecycle lock to remove: while another runner holds it, nothing is removed and it exits 4", async () => {
    await putOld('scratch/old', 'x');
    // The lock a service on this root takes for its scheduled runs (lifecycleLock).
    const service = new FileRunLock(join(root, '.stowage', 'lifecycle.lock'));
    const lease = await service.tryAcquire(60_000);
    assert.ok(lease);
    const rules = JSON.stringify([{ prefix: 'scratch/', expireAfter: '1h' }]);
    try {
      const locked = await cli(['gc', 'run', loc, '--rules', rules, '--yes']);
      assert.equal(locked.code, 4, locked.stderr);
      assert.match(locked.stderr, /another runner holds the lifecycle lock of local:.*nothing was removed/);
      const oneRule = await cli(['gc', 'temp', `${loc}#scratch/`, '--older-than', '1h', '--yes']);
      assert.equal(oneRule.code, 4, oneRule.stderr);
      assert.equal(await storage.exists('scratch/old'), true);
      const dry = await cli(['gc', 'run', loc, '--rules', rules]);
      assert.equal(dry.code, 0, 'a dry run removes nothing, so it takes no lock');
      assert.match(dry.stdout, /would delete 1/);
    } finally {
      await lease.release();
    }
    const acted = await cli(['gc', 'run', loc, '--rules', rules, '--yes']);
    assert.equal(acted.code, 0, acted.stderr);
    assert.equal(await storage.exists('scratch/old'), false);
    assert.equal((await service.tryAcquire(60_000)) !== undefined, true, 'gc released the lock after its run');
  });
});
