/** Unit tests for key normalization, byte ordering and key templates. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { compareKeys, keyTemplate, normalizeKey, normalizePrefix, StorageError } from '../../src/index.js';

function invalid(fn: () => unknown, code: string, pattern: RegExp): void {
  assert.throws(fn, (err: unknown) => err instanceof StorageError && err.code === code && pattern.test(err.message));
}

describe('normalizeKey', () => {
  it('returns valid keys unchanged and NFC-normalizes', () => {
    assert.equal(normalizeKey('a/b c+d%e#f?g&h=i'), 'a/b c+d%e#f?g&h=i');
    assert.equal(normalizeKey('A\u030a'), '\u00c5');
  });

  it('counts UTF-8 bytes, not characters, against 1024', () => {
    assert.equal(normalizeKey('ж'.repeat(512)).length, 512); // 1024 bytes
    invalid(() => normalizeKey(`${'ж'.repeat(512)}x`), 'E_INVALID_KEY', /1025 UTF-8 bytes/);
  });

  it('names the control character it found', () => {
    invalid(() => normalizeKey('a\u0000'), 'E_INVALID_KEY', /NUL at position 1/);
    invalid(() => normalizeKey('a\u001b'), 'E_INVALID_KEY', /U\+001B/);
    invalid(() => normalizeKey('a\u0085'), 'E_INVALID_KEY', /U\+0085/);
  });
});

describe('normalizePrefix', () => {
  it('allows empty and trailing-slash prefixes but not escapes', () => {
    assert.equal(normalizePrefix(undefined), '');
    assert.equal(normalizePrefix(''), '');
    assert.equal(normalizePrefix('a/b/'), 'a/b/');
    assert.equal(normalizePrefix('a/b'), 'a/b');
    invalid(() => normalizePrefix('/'), 'E_INVALID_KEY', /"\/" alone/);
    invalid(() => normalizePrefix('a/../'), 'E_INVALID_KEY', /"\.\." segment/);
  });
});

describe('compareKeys', () => {
  it('matches UTF-8 byte order on every pair of a mixed list', () => {
    const keys = ['a', 'a/', 'a-', 'a0', 'é', '\uffff', '\ue000', '\u{10000}', '\u{1f600}', 'Z', '', '\u07ff', '\u0800'];
    for (const a of keys) {
      for (const b of keys) {
        const expected = Math.sign(Buffer.compare(Buffer.from(a), Buffer.from(b)));
        assert.equal(Math.sign(compareKeys(a, b)), expected, `${JSON.stringify(a)} vs ${JSON.stringify(b)}`);
      }
    }
  });
});

describe('keyTemplate', () => {
  it('builds keys from values and built-ins', () => {
    const t = keyTemplate('user_photos/{userId}/{uuid}.{ext}');
    assert.deepEqual(t.placeholders, ['userId']);
    const key = t.build({ userId: 42, contentType: 'image/jpeg' });
    assert.match(key, /^user_photos\/42\/[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}\.jpg$/);
    assert.match(t.build({ userId: 'u1', ext: 'PNG' }), /\.png$/);
  });

  it('makes time-ordered UUIDs and consistent date parts', () => {
    const t = keyTemplate('{yyyy}/{mm}/{dd}/{date}/{uuid}');
    const a = t.build();
    const b = t.build();
    assert.ok(a < b || a.slice(0, 30) === b.slice(0, 30));
    const [yyyy, mm, dd, date] = a.split('/');
    assert.equal(date, `${yyyy}-${mm}-${dd}`);
    assert.equal(date, new Date().toISOString().slice(0, 10));
  });

  it('derives {hash2} from the UUID of the same build', () => {
    const keys = Array.from({ length: 200 }, () => keyTemplate('{hash2}/{uuid}').build());
    for (const key of keys) assert.match(key, /^[0-9a-f]{2}\//);
    assert.ok(new Set(keys.map((k) => k.slice(0, 2))).size > 50, 'shards spread out');
  });

  it('refuses values that are not one safe segment', () => {
    const t = keyTemplate('u/{userId}/f');
    for (const bad of ['', '.', '..', 'a/b', 'a\\b', 'a\nb', 'x'.repeat(300)]) {
      assert.throws(() => t.build({ userId: bad }), (e: unknown) => e instanceof StorageError && e.code === 'E_INVALID_KEY' && /userId/.test(e.message));
    }
    invalid(() => t.build({}), 'E_INVALID_ARGUMENT', /needs a value for \{userId\}/);
    invalid(() => t.build({ userId: { toString: () => 'x' } as unknown as string }), 'E_INVALID_ARGUMENT', /string or number/);
  });

  it('refuses a bad extension or unknown content type', () => {
    const t = keyTemplate('{uuid}.{ext}');
    invalid(() => t.build({ ext: 'tar.gz' }), 'E_INVALID_ARGUMENT', /\{ext\}/);
    invalid(() => t.build({ contentType: 'application/x-nothing-known' }), 'E_INVALID_ARGUMENT', /no file extension/);
    invalid(() => t.build(), 'E_INVALID_ARGUMENT', /"ext" or a "contentType"/);
  });

  it('refuses malformed templates', () => {
    invalid(() => keyTemplate(''), 'E_INVALID_ARGUMENT', /non-empty/);
    invalid(() => keyTemplate('a/{unclosed'), 'E_INVALID_ARGUMENT', /unbalanced/);
    invalid(() => keyTemplate('../{uuid}'), 'E_INVALID_KEY', /"\.\." segment/);
    invalid(() => keyTemplate('/abs/{uuid}'), 'E_INVALID_KEY', /starts with/);
  });
});
