/**
 * runLifecycle on the real fs backend: expiry by age (real mtimes, and `now`), orphans
 * against a keep list with a minimum age, aborting old and expired upload sessions, dry
 * runs that remove nothing, more objects than one delete batch with the report capped,
 * a failing rule that does not stop the next, and a cancelled run.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { createStorage, DriverLayer, runLifecycle, type AsyncDriverOperation, type Storage } from '../../src/index.js';

const dirs: string[] = [];
after(async () => Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true }))));

const HOUR = 3_600_000;

async function fresh(label: string): Promise<{ storage: Storage; root: string; dir: string }> {
  const dir = await mkdtemp(join(tmpdir(), `stowage-lifecycle-${label}-`));
  dirs.push(dir);
  const root = join(dir, 'store');
  return { storage: createStorage({ driver: 'fs', root, fsync: false }), root, dir };
}

/** Stores `key` and sets its modification time `ageMs` in the past. */
async function putAged(storage: Storage, root: string, key: string, ageMs: number, body = 'x'): Promise<void> {
  await storage.put(key, body);
  const when = new Date(Date.now() - ageMs);
  await utimes(join(root, key), when, when);
}

async function keys(storage: Storage): Promise<string[]> {
  const out: string[] = [];
  for await (const info of storage.listAll()) out.push(info.key);
  return out;
}

describe('runLifecycle', () => {
  it('expires objects under the prefix older than the age; a dry run only reports them', async () => {
    const { storage, root } = await fresh('expire');
    await putAged(storage, root, 'temp/old-1', 25 * HOUR, '12345');
    await putAged(storage, root, 'temp/sub/old-2', 48 * HOUR, '123');
    await putAged(storage, root, 'temp/new', 1 * HOUR);
    await putAged(storage, root, 'keep/old', 100 * HOUR);
    const rules = [{ prefix: 'temp/', expireAfter: '24h' }];
    const dry = await runLifecycle(storage, rules, { dryRun: true });
    assert.equal(dry.dryRun, true);
    assert.deepEqual(dry.rules[0]?.totals, { expire: { objects: 2, bytes: 8 } });
    assert.deepEqual(dry.rules[0]?.items.map((i) => i.key), ['temp/old-1', 'temp/sub/old-2']);
    assert.deepEqual(await keys(storage), ['keep/old', 'temp/new', 'temp/old-1', 'temp/sub/old-2'], 'a dry run removes nothing');
    const real = await runLifecycle(storage, rules, { dryRun: false });
    assert.deepEqual(real.rules[0]?.totals, { expire: { objects: 2, bytes: 8 } });
    assert.deepEqual(await keys(storage), ['keep/old', 'temp/new']);
    // Measured from a later `now`, the young one is old enough too.
    const later = await runLifecycle(storage, rules, { dryRun: false, now: new Date(Date.now() + 24 * HOUR) });
    assert.deepEqual(later.rules[0]?.items.map((i) => i.key), ['temp/new']);
    assert.deepEqual(await keys(storage), ['keep/old']);
  });

  it('deletes orphans not in the keep list and older than minAge, reading the list at each run', async () => {
    const { storage, root, dir } = await fresh('orphans');
    await putAged(storage, root, 'uploads/used.jpg', 5 * HOUR);
    await putAged(storage, root, 'uploads/orphan.jpg', 5 * HOUR, 'abcd');
    await putAged(storage, root, 'uploads/just-uploaded.jpg', 10 * 60_000);
    await putAged(storage, root, 'other/orphan.jpg', 5 * HOUR);
    const list = join(dir, 'keys.txt');
    await writeFile(list, 'uploads/used.jpg\n\nother/orphan.jpg\n');
    const rules = [{ prefix: 'uploads/', orphans: { keep: list, minAge: '1h' } }];
    const report = await runLifecycle(storage, rules, { dryRun: false });
    assert.equal(report.rules[0]?.kept, 2);
    assert.deepEqual(report.rules[0]?.totals, { orphan: { objects: 1, bytes: 4 } });
    assert.deepEqual(await keys(storage), ['other/orphan.jpg', 'uploads/just-uploaded.jpg', 'uploads/used.jpg']);
    // The list changed: the next run reads it again.
    await writeFile(list, 'uploads/just-uploaded.jpg\n');
    await runLifecycle(storage, rules, { dryRun: false });
    assert.deepEqual(await keys(storage), ['other/orphan.jpg', 'uploads/just-uploaded.jpg']);
  });

  it('refuses an empty or missing keep list, removing nothing, and still runs the next rule', async () => {
    const { storage, root, dir } = await fresh('keep-errors');
    await putAged(storage, root, 'uploads/a', 5 * HOUR);
    await putAged(storage, root, 'temp/a', 5 * HOUR);
    const empty = join(dir, 'empty.txt');
    await writeFile(empty, '\n');
    const report = await runLifecycle(storage, [
      { prefix: 'uploads/', orphans: { keep: empty } },
      { prefix: 'uploads/', orphans: { keep: join(dir, 'missing.txt') } },
      { prefix: 'temp/', expireAfter: '1h' },
    ], { dryRun: false });
    assert.equal(report.rules[0]?.error?.code, 'E_CONFIG_INVALID');
    assert.match(report.rules[0]?.error?.message ?? '', /keep list .*empty\.txt is empty/);
    assert.equal(report.rules[1]?.error?.code, 'E_CONFIG_INVALID');
    assert.match(report.rules[1]?.error?.message ?? '', /lifecycle rule 1: cannot read the keep list/);
    assert.deepEqual(report.rules[2]?.totals, { expire: { objects: 1, bytes: 1 } });
    assert.deepEqual(await keys(storage), ['uploads/a']);
  });

  it('aborts upload sessions older than the age and expired ones, under the prefix only', async () => {
    const { storage } = await fresh('sessions');
    const expired = await storage.sessions.create('big/expired.bin', { expiresIn: 1 });
    await storage.sessions.write(expired.id, 0, Buffer.alloc(3000, 1));
    const live = await storage.sessions.create('big/live.bin');
    await storage.sessions.write(live.id, 0, Buffer.alloc(700, 2));
    const elsewhere = await storage.sessions.create('other/old.bin');
    const expiredElsewhere = await storage.sessions.create('other/expired.bin', { expiresIn: 1 });
    await new Promise((resolve) => setTimeout(resolve, 1100));
    const rules = [{ prefix: 'big/', abortIncompleteAfter: '2h' }];
    const young = await runLifecycle(storage, rules, { dryRun: false });
    assert.deepEqual(young.rules[0]?.items.map((i) => [i.action, i.sessionId, i.size]), [['abort_session', expired.id, 3000]], 'only the expired one is old enough');
    // Three hours on, the live session is older than the age too; the one outside the prefix stays.
    const dry = await runLifecycle(storage, rules, { dryRun: true, now: new Date(Date.now() + 3 * HOUR) });
    assert.deepEqual(dry.rules[0]?.totals, { abort_session: { objects: 1, bytes: 700 } });
    assert.deepEqual((await storage.sessions.list()).map((s) => s.id).sort(), [live.id, elsewhere.id].sort(), 'a dry run aborts nothing');
    await runLifecycle(storage, rules, { dryRun: false, now: new Date(Date.now() + 3 * HOUR) });
    assert.deepEqual((await storage.sessions.list()).map((s) => s.id), [elsewhere.id]);
    assert.deepEqual((await storage.sessions.cleanup({ dryRun: true })).sessions.map((x) => x.id), [expiredElsewhere.id], 'an expired session outside the prefix stays');
    const uploadsOnly = await runLifecycle(storage, [{ prefix: '', abortIncompleteAfter: '0s', only: 'uploads' }], { dryRun: false });
    assert.deepEqual(uploadsOnly.rules[0]?.totals, {}, 'no multipart uploads on fs, and sessions left alone');
    assert.equal((await storage.sessions.list()).length, 1);
  });

  it('deletes more objects than one batch, counting all of them and listing only the first maxItems', async () => {
    const { storage, root } = await fresh('batches');
    const total = 2100;
    for (let i = 0; i < total; i += 100) await Promise.all(Array.from({ length: 100 }, (_, j) => storage.put(`temp/${String(i + j).padStart(5, '0')}`, 'ab')));
    await putAged(storage, root, 'temp/zz-young', 0);
    const report = await runLifecycle(storage, [{ prefix: 'temp/', expireAfter: '1h' }], { dryRun: false, now: new Date(Date.now() + 2 * HOUR), maxItems: 5 });
    assert.deepEqual(report.rules[0]?.totals, { expire: { objects: total + 1, bytes: 2 * total + 1 } });
    assert.deepEqual(report.rules[0]?.items.map((i) => i.key), ['temp/00000', 'temp/00001', 'temp/00002', 'temp/00003', 'temp/00004']);
    assert.equal(report.rules[0]?.omitted, total + 1 - 5);
    assert.deepEqual(await keys(storage), []);
  });

  it('stops when its signal fires: the rule in progress reports E_ABORTED and later rules do not run', async () => {
    const { storage, root } = await fresh('abort');
    await putAged(storage, root, 'a/1', 5 * HOUR);
    await putAged(storage, root, 'b/1', 5 * HOUR);
    const controller = new AbortController();
    controller.abort(new Error('shutting down'));
    const report = await runLifecycle(storage, [{ prefix: 'a/', expireAfter: '1h' }, { prefix: 'b/', expireAfter: '1h' }], { dryRun: false, signal: controller.signal });
    assert.deepEqual(report.rules, []);
    assert.deepEqual(await keys(storage), ['a/1', 'b/1']);
    const midway = new AbortController();
    // A layer that fires the signal once the first page is listed, as a shutdown during a run would.
    class CancelAfterList extends DriverLayer {
      protected override async around<T>(operation: AsyncDriverOperation, run: () => Promise<T>): Promise<T> {
        const result = await run();
        if (operation === 'list') midway.abort(new Error('shutting down'));
        return result;
      }
    }
    const slow = storage.withDriver((driver) => new CancelAfterList(driver));
    const cut = await runLifecycle(slow, [{ prefix: 'a/', expireAfter: '1h' }, { prefix: 'b/', expireAfter: '1h' }], { dryRun: false, signal: midway.signal });
    assert.deepEqual(cut.rules.map((r) => r.error?.code), ['E_ABORTED']);
    assert.deepEqual(await keys(storage), ['a/1', 'b/1'], 'nothing deleted once cancelled');
  });
});
