/**
 * Conformance cases for the concatenation of partial upload sessions (tus's
 * `Upload-Concat`): finished partials joined in order into one object with its own
 * attributes and SHA-256, everything that cannot be joined refused with nothing changed,
 * and the partials kept when the store is refused, so the concatenation can be retried.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { it } from 'node:test';
import type { Storage } from '../../src/index.js';
import { rejectsWith, sha256 } from './harness.js';
import type { StorageGetter } from './suite.js';

const KIB = 1024;

/** Runs `body` only where sessions are supported; elsewhere checks a concatenation is refused. */
function withSessions(storage: StorageGetter, body: (s: Storage) => Promise<void>): () => Promise<void> {
  return async () => {
    const s = storage();
    if (!s.capabilities.sessions) {
      await rejectsWith(s.sessions.concat('refused.bin', ['0'.repeat(32)]), 'E_UNSUPPORTED', 'sessions');
      return;
    }
    await body(s);
  };
}

/** A finished partial session holding `data`, written in pieces of `cut` bytes. */
async function partial(s: Storage, name: string, data: Buffer, cut = data.length || 1): Promise<string> {
  const { id } = await s.sessions.create(`partials/${name}`, { partial: true, size: data.length });
  for (let offset = 0; offset < data.length; offset += cut) await s.sessions.write(id, offset, data.subarray(offset, offset + cut));
  return id;
}

export function concatCases(storage: StorageGetter): void {
  it('joins finished partial sessions in order into one object with its attributes and SHA-256, then ends them', withSessions(storage, async (s) => {
    const a = randomBytes(300 * KIB + 3);
    const c = randomBytes(70 * KIB);
    const ida = await partial(s, 'a', a, 100 * KIB + 1);
    const idb = await partial(s, 'b', Buffer.alloc(0));
    // A partial whose size came with its last write (deferred length).
    const { id: idc } = await s.sessions.create('partials/c', { partial: true });
    await s.sessions.write(idc, 0, c.subarray(0, 1000));
    await s.sessions.write(idc, 1000, c.subarray(1000), { size: c.length });
    const whole = Buffer.concat([c, a]);
    await rejectsWith(s.stat('partials/a'), 'E_NOT_FOUND');
    const info = await s.sessions.concat('joined/track.mp3', [idc, idb, ida], { metadata: { album: 'b-sides' }, cacheControl: 'max-age=60' });
    assert.equal(info.size, whole.length);
    assert.equal(info.sha256, sha256(whole));
    assert.deepEqual(await s.get('joined/track.mp3'), whole);
    const stat = await s.stat('joined/track.mp3');
    assert.equal(stat.sha256, sha256(whole));
    assert.equal(stat.contentType, 'audio/mpeg');
    assert.deepEqual(stat.metadata, { album: 'b-sides' });
    assert.equal(stat.cacheControl, 'max-age=60');
    for (const id of [ida, idb, idc]) await rejectsWith(s.sessions.get(id), 'E_NOT_FOUND');
    assert.deepEqual(await s.sessions.list(), []);
    for (const name of ['a', 'b', 'c']) await rejectsWith(s.stat(`partials/${name}`), 'E_NOT_FOUND'); // a partial is never an object of its own
  }));

  it('refuses what cannot be joined (unfinished, not partial, named twice, unknown) and changes nothing', withSessions(storage, async (s) => {
    const done = await partial(s, 'done', Buffer.from('finished '));
    const short = await s.sessions.create('partials/short', { partial: true, size: 10 });
    await s.sessions.write(short.id, 0, Buffer.from('half'));
    const open = await s.sessions.create('partials/open', { partial: true });
    await s.sessions.write(open.id, 0, Buffer.from('no size yet'));
    const plain = await s.sessions.create('plain.txt', { size: 5 });
    await s.sessions.write(plain.id, 0, Buffer.from('plain'));
    await rejectsWith(s.sessions.concat('out.bin', [done, short.id]), 'E_INVALID_ARGUMENT', '4 of its 10 bytes');
    await rejectsWith(s.sessions.concat('out.bin', [open.id]), 'E_INVALID_ARGUMENT', 'undeclared');
    await rejectsWith(s.sessions.concat('out.bin', [done, plain.id]), 'E_INVALID_ARGUMENT', 'not partial');
    await rejectsWith(s.sessions.concat('out.bin', [done, done]), 'E_INVALID_ARGUMENT', 'more than once');
    await rejectsWith(s.sessions.concat('out.bin', []), 'E_INVALID_ARGUMENT', 'array of 1 to');
    await rejectsWith(s.sessions.concat('out.bin', ['../x']), 'E_INVALID_ARGUMENT', '32 lowercase hexadecimal');
    await rejectsWith(s.sessions.concat('out.bin', [done, '0'.repeat(32)]), 'E_NOT_FOUND');
    await rejectsWith(s.sessions.concat('../escape', [done]), 'E_INVALID_KEY');
    // A partial session is only ever joined; a finished one takes no more bytes.
    await rejectsWith(s.sessions.complete(done), 'E_INVALID_ARGUMENT', 'partial');
    await rejectsWith(s.sessions.write(done, 9, Buffer.from('more')), 'E_INVALID_ARGUMENT', 'holds all its 9 bytes');
    await rejectsWith(s.sessions.create('partials/x', { partial: 'yes' as unknown as boolean }), 'E_INVALID_ARGUMENT', 'partial');
    await rejectsWith(s.stat('out.bin'), 'E_NOT_FOUND');
    assert.equal((await s.sessions.get(done)).offset, 9);
    assert.equal((await s.sessions.get(done)).partial, true);
    assert.equal((await s.sessions.get(plain.id)).partial, undefined);
    await s.sessions.write(short.id, 4, Buffer.from(' done'));
    await s.sessions.write(short.id, 9, Buffer.from('!'));
    await s.sessions.concat('out.bin', [done, short.id]);
    assert.equal((await s.get('out.bin')).toString(), 'finished half done!');
    for (const id of [open.id, plain.id]) await s.sessions.abort(id);
  }));

  it('keeps the partials when the store is refused, and aborts one whose bytes lack its expected SHA-256', withSessions(storage, async (s) => {
    await s.put('joined/kept.txt', 'previous');
    const one = await partial(s, 'one', Buffer.from('first half, '));
    const two = await partial(s, 'two', Buffer.from('second half'));
    const whole = 'first half, second half';
    await rejectsWith(s.sessions.concat('joined/kept.txt', [one, two], { ifNoneMatch: '*' }), 'E_ALREADY_EXISTS');
    await rejectsWith(s.sessions.concat('joined/kept.txt', [one, two], { sha256: sha256('something else') }), 'E_CHECKSUM_MISMATCH');
    await rejectsWith(s.sessions.concat('joined/kept.txt', [one, two], { ifMatch: 'not-the-etag' }), 'E_PRECONDITION_FAILED');
    assert.equal((await s.get('joined/kept.txt')).toString(), 'previous');
    assert.deepEqual([(await s.sessions.get(one)).offset, (await s.sessions.get(two)).offset], [12, 11]);
    const { etag } = await s.stat('joined/kept.txt');
    const info = await s.sessions.concat('joined/kept.txt', [one, two], { ifMatch: etag, sha256: sha256(whole) });
    assert.equal(info.sha256, sha256(whole));
    assert.equal((await s.get('joined/kept.txt')).toString(), whole);
    // A partial that expected other bytes can never be joined: it is aborted, the others stay.
    const good = await partial(s, 'good', Buffer.from('good'));
    const { id: bad } = await s.sessions.create('partials/bad', { partial: true, size: 3, sha256: sha256('abc') });
    await s.sessions.write(bad, 0, Buffer.from('xyz'));
    const err = await rejectsWith(s.sessions.concat('joined/bad.txt', [good, bad]), 'E_CHECKSUM_MISMATCH');
    assert.equal((err.details as { actual: string }).actual, sha256('xyz'));
    await rejectsWith(s.sessions.get(bad), 'E_NOT_FOUND');
    await rejectsWith(s.stat('joined/bad.txt'), 'E_NOT_FOUND');
    assert.equal((await s.sessions.get(good)).offset, 4);
    await s.sessions.abort(good);
  }));
}
