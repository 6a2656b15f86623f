/**
 * Delivery of the outbox: verified against the backend's stored SHA-256, dead letters for
 * permanent failures (kept, never deleted, and retried on request), close waiting for a
 * delivery in flight, and recovery of a folder on start (resume, a cut-off journal line,
 * a journal line without its body, a temp file without its line).
 */
import assert from 'node:assert/strict';
import { appendFile, mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { DriverLayer, isQueued, MemoryDriver, outboxOf, PutBody, Storage, withOutbox, type DriverPutOptions, type OutboxControl, type OutboxOptions, type WriteResult } from '../../../src/index.js';
import { FAST, sha256, Switch, tempDir, waitFor } from './helpers.js';

function open(dir: string, driver: MemoryDriver | DriverLayer, options: Partial<OutboxOptions> = {}): { storage: Storage<WriteResult>; control: OutboxControl } {
  const storage = new Storage<WriteResult>(withOutbox(driver, { dir, ...FAST, initialDelayMs: 60_000, maxDelayMs: 60_000, ...options }));
  return { storage, control: outboxOf(storage.driver) as OutboxControl };
}

/** A backend that stores other bytes than it is given (a bit flipped on the way). */
class Corrupting extends DriverLayer {
  override async put(key: string, body: PutBody, opts: DriverPutOptions): Promise<WriteResult> {
    const chunks: Buffer[] = [];
    for await (const chunk of body) chunks.push(Buffer.from(chunk));
    body.complete();
    const bytes = Buffer.concat(chunks);
    bytes[0] = (bytes[0] ?? 0) ^ 1;
    return this.inner.put(key, new PutBody(bytes), opts);
  }
}

describe('outbox: delivery', () => {
  it('does not count a delivery whose stored bytes differ from the spooled ones, and makes it a dead letter after three', async () => {
    const dir = await tempDir('outbox-verify');
    const line = new Switch(new Corrupting(new MemoryDriver()));
    const { storage, control } = open(dir, line);
    line.down = true;
    assert.ok(isQueued(await storage.put('v.bin', 'spooled bytes')));
    line.down = false;
    for (let round = 1; round <= 2; round++) {
      const report = await control.drain();
      assert.equal(report.delivered, 0);
      assert.equal(report.failed[0]?.code, 'E_CHECKSUM_MISMATCH');
      assert.equal(report.pending, 1, 'still pending: not counted delivered');
    }
    const last = await control.drain();
    assert.equal(last.dead[0]?.code, 'E_CHECKSUM_MISMATCH');
    const status = await control.status();
    assert.equal(status.delivered, 0);
    assert.equal(status.dead, 1);
    await storage.close();
  });

  it('moves a permanently failing entry to dead/ with its reason, keeps it, and queues it again on retry', async () => {
    const dir = await tempDir('outbox-dead');
    const backend = new MemoryDriver();
    const line = new Switch(backend);
    const warnings: string[] = [];
    const { storage, control } = open(dir, line, { onWarning: (m) => warnings.push(m) });
    line.down = true;
    const result = await storage.put('d.txt', 'dead letter body');
    assert.ok(isQueued(result));
    line.code = 'E_ACCESS_DENIED';
    const report = await control.drain();
    assert.deepEqual(report.dead.map((d) => [d.id, d.code]), [[result.id, 'E_ACCESS_DENIED']]);
    assert.equal(await readFile(join(dir, 'dead', result.id), 'utf8'), 'dead letter body');
    const reason = JSON.parse(await readFile(join(dir, 'dead', `${result.id}.json`), 'utf8')) as { code: string; entry: { key: string } };
    assert.equal(reason.code, 'E_ACCESS_DENIED');
    assert.equal(reason.entry.key, 'd.txt');
    assert.match(warnings.join('\n'), /dead letter: E_ACCESS_DENIED/);
    assert.deepEqual((await control.listDead()).map((l) => l.entry.id), [result.id]);
    assert.equal((await control.status()).dead, 1);
    line.down = false;
    assert.deepEqual(await control.retryDead(), { retried: [result.id], skipped: [] });
    await waitFor(async () => (await control.status()).pending === 0, 'the retried delivery');
    assert.equal((await new Storage(backend).get('d.txt')).toString(), 'dead letter body');
    assert.deepEqual(await readdir(join(dir, 'dead')), []);
    await storage.close();
  });

  it('makes a dead letter of a spooled body that no longer matches its SHA-256, and of a create-only write whose key someone else created meanwhile', async () => {
    const dir = await tempDir('outbox-dead-checks');
    const backend = new MemoryDriver();
    const line = new Switch(backend);
    const { storage, control } = open(dir, line);
    line.down = true;
    const rotten = await storage.put('rot.bin', 'spooled bytes');
    const createOnly = await storage.put('once.txt', 'mine', { ifNoneMatch: '*' });
    assert.ok(isQueued(rotten) && isQueued(createOnly));
    await writeFile(join(dir, 'spool', rotten.id), 'spooled bytez');
    line.down = false;
    await new Storage(backend).put('once.txt', 'someone else');
    const report = await control.drain();
    assert.deepEqual(report.dead.map((d) => [d.key, d.code]).sort(), [['once.txt', 'E_ALREADY_EXISTS'], ['rot.bin', 'E_CHECKSUM_MISMATCH']]);
    assert.equal((await new Storage(backend).get('once.txt')).toString(), 'someone else', 'the other writer kept its object');
    assert.equal(await new Storage(backend).exists('rot.bin'), false, 'nothing was stored from the damaged body');
    await storage.close();
  });

  it('keeps a dead letter dead when its key has a newer pending write', async () => {
    const dir = await tempDir('outbox-dead-newer');
    const line = new Switch(new MemoryDriver());
    const { storage, control } = open(dir, line);
    line.down = true;
    const old = await storage.put('n.txt', 'old');
    line.code = 'E_ACCESS_DENIED';
    await control.drain();
    line.code = 'E_UNAVAILABLE';
    await storage.put('n.txt', 'newer');
    assert.ok(isQueued(old));
    assert.deepEqual(await control.retryDead(), { retried: [], skipped: [old.id] });
    await storage.close();
  });

  it('close waits for a delivery in flight, and a restart resumes what was pending', async () => {
    const dir = await tempDir('outbox-close');
    const backend = new MemoryDriver();
    const line = new Switch(backend);
    let release = () => undefined as void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    let started = false;
    const original = backend.put.bind(backend);
    backend.put = async (key: string, body: PutBody, opts: DriverPutOptions) => {
      if (key === 'slow.txt') {
        started = true;
        await gate;
      }
      return original(key, body, opts);
    };
    const first = open(dir, line);
    line.down = true;
    await first.storage.put('slow.txt', 'slow');
    await first.storage.put('later.txt', 'later');
    line.down = false;
    void first.control.drain().catch(() => undefined);
    await waitFor(() => started, 'the delivery to start');
    let closed = false;
    const closing = first.storage.close().then(() => (closed = true));
    await new Promise((resolve) => setTimeout(resolve, 100));
    assert.equal(closed, false, 'close waits for the delivery');
    release();
    await closing;
    const reopened = open(dir, line, { initialDelayMs: 10 });
    await waitFor(async () => (await reopened.control.status()).pending === 0, 'the resumed delivery');
    assert.equal((await new Storage(backend).get('later.txt')).toString(), 'later');
    assert.equal((await new Storage(backend).get('slow.txt')).toString(), 'slow');
    await reopened.storage.close();
  });

  it('recovers a folder: ignores a cut-off journal line, drops a line without its body, removes a temp file and an unjournaled body', async () => {
    const dir = await tempDir('outbox-recover');
    const line = new Switch(new MemoryDriver());
    line.down = true;
    const first = open(dir, line);
    const kept = await first.storage.put('kept.txt', 'kept');
    const lost = await first.storage.put('lost.txt', 'lost');
    await first.storage.close();
    assert.ok(isQueued(kept) && isQueued(lost));
    // A crash left: half a journal line, a body whose line never made it, a temp file, and a body removed by hand.
    await appendFile(join(dir, 'journal.log'), '{"op":"queued","entry":{"id":"x');
    await writeFile(join(dir, 'spool', '0000000aa-000000000000'), 'never acknowledged');
    await mkdir(join(dir, 'tmp'), { recursive: true });
    await writeFile(join(dir, 'tmp', 'partial.body'), 'partial');
    await rm(join(dir, 'spool', lost.id));
    const warnings: string[] = [];
    const second = open(dir, line, { onWarning: (m) => warnings.push(m) });
    const status = await second.control.status();
    assert.equal(status.pending, 1);
    assert.match(warnings.join('\n'), /ignored 1 unreadable journal line/);
    assert.match(warnings.join('\n'), new RegExp(`entry ${lost.id} .* its body is gone; dropped`));
    assert.deepEqual(await readdir(join(dir, 'spool')), [kept.id]);
    assert.deepEqual(await readdir(join(dir, 'tmp')), []);
    // The journal was rewritten: later lines do not follow the cut-off one.
    const again = await second.storage.put('again.txt', 'again');
    await second.storage.close();
    const third = open(dir, line);
    assert.equal((await third.control.status()).pending, 2);
    assert.ok(isQueued(again));
    assert.equal((await third.storage.get('again.txt')).toString(), 'again');
    assert.equal((await third.storage.stat('kept.txt')).sha256, sha256('kept'));
    await third.storage.close();
  });
});

describe('outbox: the journal', () => {
  it('rewrites itself once most of its lines are about entries that are gone, keeping the live ones and every later append', async () => {
    const { Journal, readJournal } = await import('../../../src/layers/outbox/journal.js');
    const dir = await tempDir('outbox-journal');
    const journal = await Journal.rewrite(dir, []);
    const entry = (n: number) => ({ id: `e${n}`, seq: n, key: `k${n}`, size: 1, sha256: 'x', queuedAt: new Date(0).toISOString(), reason: 'E_UNAVAILABLE', attributes: { contentType: 'text/plain', metadata: {} } });
    // 6,000 entries queued, all but every 1000th delivered: 11,994 lines, 6 live.
    await Promise.all(Array.from({ length: 6000 }, (_, n) => journal.append({ op: 'queued', entry: entry(n) })));
    await Promise.all(Array.from({ length: 6000 }, (_, n) => (n % 1000 === 0 ? Promise.resolve() : journal.append({ op: 'delivered', id: `e${n}` }))));
    await journal.append({ op: 'queued', entry: entry(7000) });
    await journal.close();
    const lines = (await readFile(join(dir, 'journal.log'), 'utf8')).trim().split('\n');
    assert.ok(lines.length < 100, `rewritten (${lines.length} lines)`);
    const replay = await readJournal(dir);
    assert.deepEqual([...replay.live.keys()].sort(), ['e0', 'e1000', 'e2000', 'e3000', 'e4000', 'e5000', 'e7000']);
    assert.equal(replay.ignoredLines, 0);
  });
});
