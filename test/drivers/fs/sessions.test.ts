/**
 * Upload sessions of the fs driver with real processes: a writer SIGKILLed at random
 * instants leaves a record another process resumes from, byte for byte; one writer at a
 * time (a dead one's lease is taken over); a record whose data went missing is refused;
 * a session whose removal a crash cut short after completion is not written again; partial
 * sessions joined from their committed bytes only, checked as they are read back.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { link, readdir, readFile, stat, truncate, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { createStorage } from '../../../src/index.js';
import { rejectsWith } from '../../conformance/harness.js';
import { startChild, suiteRoots } from './helpers.js';
import { patternAt } from './fixtures/pattern.js';

const WRITER = 'session-writer.ts';
const root = suiteRoots();

describe('fs driver: upload sessions across processes', () => {
  it('resumes after a writer is SIGKILLed at random instants, and the object has every byte and the right SHA-256', async () => {
    const dir = await root('sessions-kill');
    const storage = createStorage({ driver: 'fs', root: dir });
    const { id } = await storage.sessions.create('uploads/recording.wav');
    const sessionsDir = join(dir, '.stowage', 'sessions');
    let kills = 0;
    for (const delayMs of [0, 35, 120, 260]) {
      const { child, lines } = startChild([dir, id], WRITER);
      const firstWrite = await lines.next(); // at least one write committed in this round
      assert.ok(typeof (firstWrite.value as { offset?: unknown } | undefined)?.offset === 'number');
      await new Promise((resolve) => setTimeout(resolve, delayMs));
      child.kill('SIGKILL');
      await new Promise((resolve) => child.once('exit', resolve));
      kills++;
      // What a later process finds: a committed offset the data file holds, bytes before it exact.
      const { offset } = await storage.sessions.get(id);
      const data = await readFile(join(sessionsDir, `${id}.data`));
      assert.ok(data.length >= offset, 'the data file holds at least the committed bytes');
      assert.ok(data.subarray(0, offset).equals(patternAt(0, offset)), `round ${kills}: the committed bytes are exact`);
    }
    const { offset } = await storage.sessions.get(id);
    assert.ok(offset > 0);
    const rest = 1_000_003;
    await storage.sessions.write(id, offset, patternAt(offset, rest));
    const info = await storage.sessions.complete(id);
    const expected = patternAt(0, offset + rest);
    assert.equal(info.size, expected.length);
    assert.equal(info.sha256, createHash('sha256').update(expected).digest('hex'), 'the digest spans the bytes of every process');
    assert.ok((await storage.get('uploads/recording.wav')).equals(expected));
    await rejectsWith(storage.sessions.get(id), 'E_NOT_FOUND');
    assert.deepEqual((await storage.list()).objects.map((o) => o.key), ['uploads/recording.wav'], 'sessions are never listed as objects');
  });

  it('lets one writer at a time write a session, and takes over the lease of a writer that died', async () => {
    const dir = await root('sessions-lease');
    const storage = createStorage({ driver: 'fs', root: dir });
    const { id } = await storage.sessions.create('a.bin');
    let release = () => {};
    const held = new Promise<void>((resolve) => (release = resolve));
    async function* waiting(): AsyncGenerator<Buffer> {
      yield Buffer.from('first ');
      await held;
    }
    const first = storage.sessions.write(id, 0, waiting());
    await new Promise((resolve) => setTimeout(resolve, 50));
    await rejectsWith(storage.sessions.write(id, 0, Buffer.from('second')), 'E_PRECONDITION_FAILED', 'being written');
    // Another process sees the lease too.
    const other = createStorage({ driver: 'fs', root: dir });
    await rejectsWith(other.sessions.write(id, 0, Buffer.from('second')), 'E_PRECONDITION_FAILED');
    release();
    assert.equal((await first).offset, 6);
    // A lease left by a process that no longer runs is taken over.
    await writeFile(join(dir, '.stowage', 'sessions', `${id}.writer`), `${hostname()} 2147483646`);
    assert.equal((await other.sessions.write(id, 6, Buffer.from('more'))).offset, 10);
    assert.equal((await stat(join(dir, '.stowage', 'sessions', `${id}.writer`)).catch(() => undefined)), undefined, 'the lease ends with the write');
    // An empty lease is one whose writer died before it said who it was.
    await writeFile(join(dir, '.stowage', 'sessions', `${id}.writer`), '');
    assert.equal((await other.sessions.write(id, 10, Buffer.from('!'))).offset, 11);
    assert.deepEqual((await readdir(join(dir, '.stowage', 'sessions'))).sort(), [`${id}.data`, `${id}.json`], 'no lease and no temp file left');
  });

  it('refuses a session whose data file lost committed bytes, rather than resume it with a hole', async () => {
    const dir = await root('sessions-lost');
    const storage = createStorage({ driver: 'fs', root: dir });
    const { id } = await storage.sessions.create('b.bin');
    await storage.sessions.write(id, 0, Buffer.alloc(5000, 1));
    await truncate(join(dir, '.stowage', 'sessions', `${id}.data`), 100);
    await rejectsWith(storage.sessions.get(id), 'E_UNAVAILABLE', 'holds 100');
    await rejectsWith(storage.sessions.complete(id), 'E_UNAVAILABLE');
    await storage.sessions.abort(id);
    await rejectsWith(storage.sessions.get(id), 'E_NOT_FOUND');
  });

  it('completes only the committed bytes, whatever a crashed write left past them', async () => {
    const dir = await root('sessions-tail');
    const storage = createStorage({ driver: 'fs', root: dir });
    const { id } = await storage.sessions.create('c.txt');
    await storage.sessions.write(id, 0, Buffer.from('kept '));
    await writeFile(join(dir, '.stowage', 'sessions', `${id}.data`), 'kept GARBAGE FROM A DEAD WRITER');
    assert.equal((await storage.sessions.get(id)).offset, 5);
    await storage.sessions.write(id, 5, Buffer.from('tail'));
    await storage.sessions.complete(id);
    assert.equal((await storage.get('c.txt')).toString(), 'kept tail');
  });

  it('never writes again into a session that completed before a crash cut its removal short', async () => {
    const dir = await root('sessions-done');
    const storage = createStorage({ driver: 'fs', root: dir });
    const { id } = await storage.sessions.create('d.txt');
    await storage.sessions.write(id, 0, Buffer.from('final'));
    const record = await readFile(join(dir, '.stowage', 'sessions', `${id}.json`));
    await storage.sessions.complete(id);
    // Put back what a crash between the commit and the removal leaves: the record, and the data linked to the object.
    await writeFile(join(dir, '.stowage', 'sessions', `${id}.json`), record);
    await link(join(dir, 'd.txt'), join(dir, '.stowage', 'sessions', `${id}.data`));
    await rejectsWith(storage.sessions.write(id, 5, Buffer.from(' and more')), 'E_NOT_FOUND');
    assert.equal((await storage.get('d.txt')).toString(), 'final');
    assert.deepEqual(await storage.sessions.list(), []);
  });

  it('joins only the committed bytes of partial sessions, and refuses one whose data file changed under it', async () => {
    const dir = await root('sessions-concat');
    const storage = createStorage({ driver: 'fs', root: dir });
    const data = (id: string) => join(dir, '.stowage', 'sessions', `${id}.data`);
    const { id: one } = await storage.sessions.create('parts/one', { partial: true, size: 6 });
    await storage.sessions.write(one, 0, Buffer.from('first '));
    await writeFile(data(one), 'first GARBAGE FROM A DEAD WRITER'); // past the committed offset
    const { id: two } = await storage.sessions.create('parts/two', { partial: true, size: 6 });
    await storage.sessions.write(two, 0, Buffer.from('second'));
    await writeFile(data(two), 'sEcond'); // a byte changed on disk within the committed offset
    await rejectsWith(storage.sessions.concat('joined.txt', [one, two]), 'E_UNAVAILABLE', `session ${two} read back`);
    await rejectsWith(storage.stat('joined.txt'), 'E_NOT_FOUND');
    assert.deepEqual([(await storage.sessions.get(one)).offset, (await storage.sessions.get(two)).offset], [6, 6], 'the sessions stay');
    await writeFile(data(two), 'second');
    await storage.sessions.concat('joined.txt', [one, two]);
    assert.equal((await storage.get('joined.txt')).toString(), 'first second');
    assert.deepEqual(await storage.sessions.list(), []);
  });
});
