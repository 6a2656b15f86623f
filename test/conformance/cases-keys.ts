/** Conformance cases for the key rules: Unicode, punctuation and every rejection. */
import assert from 'node:assert/strict';
import { it } from 'node:test';
import { rejectsWith } from './harness.js';
import type { StorageGetter } from './suite.js';

/** Keys with characters other libraries mangle; each must round-trip exactly. */
export const TRICKY_KEYS = [
  'кириллица/фото.jpg',
  '中文/写真/图片.png',
  '絵文字/😀🎉/party 🎈.gif',
  'with space/and  two  spaces.txt',
  'plus+sign/a+b=c.txt',
  'percent/100%/%20literal%2F.txt',
  'hash#/fragment#part',
  'query?/what?x=1&y=2',
  'amp&/equals=/mixed &=+#?%.bin',
  "quotes/'single' \"double\".txt",
  'dots/.hidden/..double.ext/file.',
  'tilde~/brackets[]{}()/semi;colon:comma,@!$^.txt',
];

const INVALID: [string, unknown, RegExp][] = [
  ['the empty key', '', /empty/],
  ['a key over 1024 UTF-8 bytes', `${'a/'.repeat(300)}${'я'.repeat(250)}`, /1024/],
  ['a NUL character', 'a\u0000b', /NUL/],
  ['a line break', 'a\nb', /control character/],
  ['a DEL character', 'a\u007fb', /control character/],
  ['a backslash', 'a\\b', /backslash/],
  ['a leading slash', '/a/b', /starts with "\/"/],
  ['a trailing slash', 'a/b/', /ends with "\/"/],
  ['an empty segment', 'a//b', /empty segment/],
  ['a "." segment', 'a/./b', /"\." segment/],
  ['a ".." segment', 'a/../b', /"\.\." segment/],
  ['a leading ".."', '../etc/passwd', /"\.\." segment/],
  ['a lone "."', '.', /"\." segment/],
  ['a non-string', 42, /expected a string/],
  ['an unpaired surrogate', 'a\ud800b', /surrogate/],
];

export function keyCases(storage: StorageGetter): void {
  for (const key of TRICKY_KEYS) {
    it(`round-trips the key ${JSON.stringify(key)}`, async () => {
      const info = await storage().put(key, key);
      assert.equal(info.key, key);
      assert.equal((await storage().get(key)).toString(), key);
      assert.deepEqual((await storage().list({ prefix: key })).objects.map((o) => o.key), [key]);
    });
  }

  for (const [name, key, reason] of INVALID) {
    it(`rejects ${name} with E_INVALID_KEY and a reason`, async () => {
      await rejectsWith(storage().put(key as string, 'x'), 'E_INVALID_KEY', reason);
      await rejectsWith(storage().get(key as string), 'E_INVALID_KEY', reason);
      await rejectsWith(storage().delete(key as string), 'E_INVALID_KEY', reason);
    });
  }

  it('normalizes keys to NFC, so composed and decomposed forms are one key', async () => {
    const decomposed = 'cafe\u0301/re\u0301sume\u0301.txt';
    const composed = decomposed.normalize('NFC');
    const info = await storage().put(decomposed, 'x');
    assert.equal(info.key, composed);
    assert.equal((await storage().get(composed)).toString(), 'x');
    assert.deepEqual((await storage().list()).objects.map((o) => o.key), [composed]);
  });

  it('accepts a key of exactly 1024 UTF-8 bytes', async () => {
    const segment = 'k'.repeat(200);
    const key = `${[segment, segment, segment, segment, segment].join('/')}/${'z'.repeat(1024 - 5 * 201)}`;
    assert.equal(Buffer.byteLength(key), 1024);
    await storage().put(key, 'max');
    assert.equal((await storage().get(key)).toString(), 'max');
  });

  it('enforces the advertised segment limit, if any', async () => {
    const limit = storage().capabilities.maxSegmentBytes;
    const long = 'é'.repeat(200); // 400 bytes
    if (limit !== undefined && limit < 400) {
      await rejectsWith(storage().put(long, 'x'), 'E_INVALID_KEY', 'segment');
    } else {
      await storage().put(long, 'x');
      assert.equal(await storage().exists(long), true);
    }
  });

  it('handles a key that is also a prefix as the capability says', async () => {
    await storage().put('pair', 'object');
    if (storage().capabilities.keyIsPrefix) {
      await storage().put('pair/child', 'child');
      assert.equal((await storage().get('pair')).toString(), 'object');
      assert.equal((await storage().get('pair/child')).toString(), 'child');
    } else {
      await rejectsWith(storage().put('pair/child', 'child'), 'E_ALREADY_EXISTS', '"pair"');
      await storage().put('other/child', 'child');
      await rejectsWith(storage().put('other', 'object'), 'E_ALREADY_EXISTS', 'folder');
      assert.equal((await storage().get('pair')).toString(), 'object');
      assert.equal((await storage().get('other/child')).toString(), 'child');
    }
  });

  it('rejects invalid list prefixes but allows a trailing slash', async () => {
    await storage().put('p/q', 'x');
    await rejectsWith(storage().list({ prefix: '../' }), 'E_INVALID_KEY');
    await rejectsWith(storage().list({ prefix: 'a//' }), 'E_INVALID_KEY');
    assert.deepEqual((await storage().list({ prefix: 'p/' })).objects.map((o) => o.key), ['p/q']);
  });
}
