/**
 * Conformance cases for upload sessions: writes of any size at their offsets, the offset
 * a later call sees, deferred length, per-write and whole-object checksums, bytes kept
 * when a body fails, completion, abort, listing and expiry. A driver without sessions
 * must refuse them with E_UNSUPPORTED.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { it } from 'node:test';
import { isStorageError, type Storage } from '../../src/index.js';
import { rejectsWith, sha256 } from './harness.js';
import type { StorageGetter } from './suite.js';

const KIB = 1024;

/** Runs `body` only where sessions are supported; elsewhere checks they are refused. */
function withSessions(storage: StorageGetter, body: (s: Storage) => Promise<void>): () => Promise<void> {
  return async () => {
    const s = storage();
    if (!s.capabilities.sessions) {
      await rejectsWith(s.sessions.create('refused.bin'), 'E_UNSUPPORTED', 'sessions');
      assert.deepEqual(await s.sessions.list(), []);
      return;
    }
    await body(s);
  };
}

/** A body that yields `data`, then fails as a client that went away would. */
async function* failingAfter(data: Buffer): AsyncGenerator<Buffer> {
  yield data;
  throw new Error('connection reset by the client');
}

export function sessionCases(storage: StorageGetter): void {
  it('stores writes of odd sizes in order, reports the offset, and completes into the object with its attributes and SHA-256', withSessions(storage, async (s) => {
    const data = randomBytes(2 * 1024 * KIB + 100 * KIB + 4);
    const cuts = [0, 1, 100 * KIB + 4, data.length];
    const session = await s.sessions.create('sessions/photo.jpg', { size: data.length, metadata: { owner: 'ana' }, cacheControl: 'max-age=60' });
    assert.match(session.id, /^[0-9a-f]{32}$/);
    assert.equal(session.offset, 0);
    assert.equal(session.contentType, 'image/jpeg');
    for (let i = 1; i < cuts.length; i++) {
      const written = await s.sessions.write(session.id, cuts[i - 1] as number, data.subarray(cuts[i - 1], cuts[i]));
      assert.equal(written.offset, cuts[i]);
      assert.equal((await s.sessions.get(session.id)).offset, cuts[i], 'a later call sees the offset');
    }
    await rejectsWith(s.stat('sessions/photo.jpg'), 'E_NOT_FOUND');
    const info = await s.sessions.complete(session.id);
    assert.equal(info.size, data.length);
    assert.equal(info.sha256, sha256(data));
    assert.deepEqual(await s.get('sessions/photo.jpg'), data);
    const stat = await s.stat('sessions/photo.jpg');
    assert.equal(stat.sha256, sha256(data));
    assert.deepEqual(stat.metadata, { owner: 'ana' });
    assert.equal(stat.cacheControl, 'max-age=60');
    assert.equal(stat.contentType, 'image/jpeg');
    await rejectsWith(s.sessions.get(session.id), 'E_NOT_FOUND');
    assert.deepEqual(await s.sessions.list(), []);
  }));

  it('refuses a write at another offset with E_OFFSET_MISMATCH naming the offset, and writes nothing', withSessions(storage, async (s) => {
    const { id } = await s.sessions.create('sessions/offset.bin');
    await s.sessions.write(id, 0, Buffer.from('hello '));
    for (const offset of [0, 3, 7]) {
      const err = await rejectsWith(s.sessions.write(id, offset, Buffer.from('again')), 'E_OFFSET_MISMATCH', 'offset 6');
      assert.equal((err.details as { offset: number }).offset, 6);
    }
    await rejectsWith(s.sessions.write(id, -1, Buffer.from('x')), 'E_INVALID_ARGUMENT');
    await s.sessions.write(id, 6, Buffer.from('world'));
    await s.sessions.complete(id);
    assert.equal((await s.get('sessions/offset.bin')).toString(), 'hello world');
  }));

  it('takes the size later (deferred length), refuses to change it, to pass it, or to complete short of it', withSessions(storage, async (s) => {
    const { id } = await s.sessions.create('sessions/deferred.bin');
    await s.sessions.write(id, 0, Buffer.from('abc'));
    assert.equal((await s.sessions.get(id)).size, undefined);
    const declared = await s.sessions.write(id, 3, Buffer.from('def'), { size: 10 });
    assert.equal(declared.size, 10);
    await rejectsWith(s.sessions.write(id, 6, Buffer.alloc(0), { size: 11 }), 'E_INVALID_ARGUMENT', 'cannot change');
    await rejectsWith(s.sessions.complete(id), 'E_INVALID_ARGUMENT', '6 of its 10 bytes');
    await rejectsWith(s.sessions.write(id, 6, Buffer.from('too many')), 'E_TOO_LARGE');
    assert.equal((await s.sessions.get(id)).offset, 6, 'a write past the size added nothing');
    await s.sessions.write(id, 6, Buffer.from('ghij'));
    const info = await s.sessions.complete(id);
    assert.equal(info.size, 10);
    assert.equal((await s.get('sessions/deferred.bin')).toString(), 'abcdefghij');
    // Without a declared size, the session's size is what it holds.
    const open = await s.sessions.create('sessions/open-ended.bin');
    await s.sessions.write(open.id, 0, Buffer.from('xyz'));
    assert.equal((await s.sessions.complete(open.id)).size, 3);
    const empty = await s.sessions.create('sessions/empty.bin', { size: 0 });
    assert.equal((await s.sessions.complete(empty.id)).sha256, sha256(''));
  }));

  it('never completes bytes whose SHA-256 differs from the expected one, and keeps the previous object', withSessions(storage, async (s) => {
    await s.put('sessions/kept.txt', 'previous');
    const { id } = await s.sessions.create('sessions/kept.txt', { sha256: sha256('expected bytes') });
    await s.sessions.write(id, 0, Buffer.from('other bytes!!!'));
    const err = await rejectsWith(s.sessions.complete(id), 'E_CHECKSUM_MISMATCH');
    assert.equal((err.details as { actual: string }).actual, sha256('other bytes!!!'));
    assert.equal((await s.get('sessions/kept.txt')).toString(), 'previous');
    await rejectsWith(s.sessions.get(id), 'E_NOT_FOUND'); // aborted: its bytes can never match
    const good = await s.sessions.create('sessions/good.txt', { sha256: sha256('expected bytes') });
    await s.sessions.write(good.id, 0, Buffer.from('expected '));
    await s.sessions.write(good.id, 9, Buffer.from('bytes'));
    assert.equal((await s.sessions.complete(good.id)).sha256, sha256('expected bytes'));
  }));

  it('counts nothing of a write whose own checksum differs, and all of one that matches', withSessions(storage, async (s) => {
    const { id } = await s.sessions.create('sessions/chunk-sums.bin');
    await rejectsWith(s.sessions.write(id, 0, Buffer.from('chunk one'), { sha256: sha256('something else') }), 'E_CHECKSUM_MISMATCH');
    assert.equal((await s.sessions.get(id)).offset, 0);
    const big = randomBytes(600 * KIB);
    await rejectsWith(s.sessions.write(id, 0, failingAfter(big), { sha256: sha256(big) }), 'E_INVALID_ARGUMENT', 'reading the body failed');
    assert.equal((await s.sessions.get(id)).offset, 0, 'a checked write that did not arrive whole counts for nothing');
    await s.sessions.write(id, 0, Buffer.from('chunk one'), { sha256: sha256('chunk one') });
    assert.equal((await s.sessions.get(id)).offset, 9);
    await s.sessions.complete(id);
    assert.equal((await s.get('sessions/chunk-sums.bin')).toString(), 'chunk one');
  }));

  it('keeps the bytes received before a body fails, so the upload resumes from there', withSessions(storage, async (s) => {
    const first = randomBytes(300 * KIB + 7);
    const rest = randomBytes(200 * KIB);
    const { id } = await s.sessions.create('sessions/cut.bin');
    await rejectsWith(s.sessions.write(id, 0, failingAfter(first)), 'E_INVALID_ARGUMENT', 'reading the body failed');
    const { offset } = await s.sessions.get(id);
    assert.equal(offset, first.length);
    await s.sessions.write(id, offset, rest);
    const info = await s.sessions.complete(id);
    assert.equal(info.sha256, sha256(Buffer.concat([first, rest])), 'the digest covers the bytes of both writes');
    assert.deepEqual(await s.get('sessions/cut.bin'), Buffer.concat([first, rest]));
  }));

  it('aborts (twice is fine), lists open sessions by prefix, refuses bad ids and unknown sessions', withSessions(storage, async (s) => {
    const a = await s.sessions.create('sessions/list/a.bin');
    const b = await s.sessions.create('sessions/list/b.bin');
    const other = await s.sessions.create('elsewhere/c.bin');
    await s.sessions.write(a.id, 0, Buffer.from('partial'));
    assert.deepEqual((await s.sessions.list({ prefix: 'sessions/list/' })).map((x) => x.id), [a.id, b.id]);
    assert.equal((await s.sessions.list()).length, 3);
    await s.sessions.abort(a.id);
    await s.sessions.abort(a.id);
    await rejectsWith(s.sessions.get(a.id), 'E_NOT_FOUND');
    await rejectsWith(s.sessions.write(a.id, 7, Buffer.from('more')), 'E_NOT_FOUND');
    assert.deepEqual((await s.sessions.list({ prefix: 'sessions/' })).map((x) => x.id), [b.id]);
    await rejectsWith(s.stat('sessions/list/a.bin'), 'E_NOT_FOUND');
    await rejectsWith(s.sessions.get('../../etc/passwd'), 'E_INVALID_ARGUMENT', '32 lowercase hexadecimal');
    await rejectsWith(s.sessions.get('0'.repeat(32)), 'E_NOT_FOUND');
    await rejectsWith(s.sessions.create('../escape'), 'E_INVALID_KEY');
    await rejectsWith(s.sessions.create('x', { size: -1 }), 'E_INVALID_ARGUMENT');
    await rejectsWith(s.sessions.create('x', { expiresIn: 0 }), 'E_INVALID_ARGUMENT');
    await s.sessions.abort(other.id);
    await s.sessions.abort(b.id);
    assert.deepEqual(await s.sessions.list(), []);
  }));

  it('keeps a session whose completion a condition refused, so it can be retried or aborted', withSessions(storage, async (s) => {
    await s.put('sessions/exists.txt', 'old');
    const { id } = await s.sessions.create('sessions/exists.txt');
    await s.sessions.write(id, 0, Buffer.from('new'));
    await rejectsWith(s.sessions.complete(id, { ifNoneMatch: '*' }), 'E_ALREADY_EXISTS');
    assert.equal((await s.sessions.get(id)).offset, 3);
    await rejectsWith(s.sessions.complete(id, { ifMatch: 'not-the-etag' }), 'E_PRECONDITION_FAILED');
    const current = await s.stat('sessions/exists.txt');
    await s.sessions.complete(id, { ifMatch: current.etag });
    assert.equal((await s.get('sessions/exists.txt')).toString(), 'new');
  }));

  it('expires sessions: gone for every call, left out of the list, and removed by the clean-up', withSessions(storage, async (s) => {
    const { id } = await s.sessions.create('sessions/expiring.bin', { expiresIn: 1 });
    await s.sessions.write(id, 0, Buffer.from('soon gone'));
    const kept = await s.sessions.create('sessions/kept.bin');
    assert.equal((await s.sessions.cleanup()).removed, 0);
    const later = new Date(Date.now() + 1500);
    const dry = await s.sessions.cleanup({ before: later, dryRun: true });
    assert.deepEqual([dry.removed, dry.sessions.map((x) => x.id)], [0, [id]]);
    assert.equal((await s.sessions.get(id)).offset, 9, 'a dry run removes nothing');
    assert.deepEqual((await s.sessions.cleanup({ before: later })).sessions.map((x) => x.id), [id]);
    await rejectsWith(s.sessions.get(id), 'E_NOT_FOUND');
    assert.deepEqual((await s.sessions.list()).map((x) => x.id), [kept.id]);
    // A session past its time is gone even before the clean-up runs.
    const short = await s.sessions.create('sessions/short.bin', { expiresIn: 1 });
    await new Promise((resolve) => setTimeout(resolve, 1100));
    await rejectsWith(s.sessions.write(short.id, 0, Buffer.from('late')), 'E_NOT_FOUND');
    assert.equal((await s.sessions.list()).some((x) => x.id === short.id), false);
    await s.sessions.cleanup();
    await s.sessions.abort(kept.id);
    assert.equal((await s.sessions.list()).length, 0);
    assert.ok(isStorageError(await s.sessions.get(short.id).catch((e: unknown) => e), 'E_NOT_FOUND'));
  }));
}
