/** Conformance cases for list, listAll and usage: order, prefixes, delimiters and paging. */
import assert from 'node:assert/strict';
import { it } from 'node:test';
import type { ListPage, Storage } from '../../src/index.js';
import { allKeys, byteSorted, rejectsWith } from './harness.js';
import { TRICKY_KEYS } from './cases-keys.js';
import type { StorageGetter } from './suite.js';

async function putAll(storage: Storage, keys: string[], concurrency = 16): Promise<void> {
  for (let i = 0; i < keys.length; i += concurrency) {
    await Promise.all(keys.slice(i, i + concurrency).map((key) => storage.put(key, key)));
  }
}

export function listCases(storage: StorageGetter): void {
  it('lists nothing in an empty store', async () => {
    assert.deepEqual(await storage().list(), { objects: [], prefixes: [] });
    assert.deepEqual(await allKeys(storage()), []);
  });

  it('lists nothing for a prefix nothing starts with', async () => {
    await storage().put('a/b', 'x');
    const page = await storage().list({ prefix: 'zzz' });
    assert.deepEqual(page.objects, []);
    assert.equal(page.cursor, undefined);
  });

  it('lists in UTF-8 byte order, including emoji after private-use characters', async () => {
    const keys = [...TRICKY_KEYS.filter((k) => !k.startsWith('dots/')), 'a-b', 'a0', 'A', 'z', '\uff5e', '\u{1f600}', 'é', 'e'];
    await putAll(storage(), keys);
    const listed = (await storage().list()).objects.map((o) => o.key);
    assert.deepEqual(listed, byteSorted(keys));
  });

  it('filters by prefix, which need not end at a slash', async () => {
    await putAll(storage(), ['photos/1.jpg', 'photos/2/3.jpg', 'photosets/x', 'photo', 'video/1.mp4']);
    assert.deepEqual((await storage().list({ prefix: 'photos/' })).objects.map((o) => o.key), ['photos/1.jpg', 'photos/2/3.jpg']);
    assert.deepEqual((await storage().list({ prefix: 'photo' })).objects.map((o) => o.key), ['photo', 'photos/1.jpg', 'photos/2/3.jpg', 'photosets/x']);
  });

  it('folds keys into common prefixes with a delimiter', async () => {
    await putAll(storage(), ['top.txt', 'a/1', 'a/2', 'a/b/3', 'b/c/d/4', 'c.txt']);
    const page = await storage().list({ delimiter: '/' });
    assert.deepEqual(page.objects.map((o) => o.key), ['c.txt', 'top.txt']);
    assert.deepEqual(page.prefixes, ['a/', 'b/']);
    const nested = await storage().list({ prefix: 'a/', delimiter: '/' });
    assert.deepEqual(nested.objects.map((o) => o.key), ['a/1', 'a/2']);
    assert.deepEqual(nested.prefixes, ['a/b/']);
  });

  it('folds with a prefix that stops mid-segment', async () => {
    await putAll(storage(), ['img/2024/a', 'img/2025/b', 'img/20.txt', 'img/3']);
    const page = await storage().list({ prefix: 'img/20', delimiter: '/' });
    assert.deepEqual(page.objects.map((o) => o.key), ['img/20.txt']);
    assert.deepEqual(page.prefixes, ['img/2024/', 'img/2025/']);
  });

  it('supports delimiters other than "/"', async () => {
    await putAll(storage(), ['2024-01-a', '2024-02-b', '2025-01-c', 'plain']);
    const page = await storage().list({ delimiter: '-' });
    assert.deepEqual(page.prefixes, ['2024-', '2025-']);
    assert.deepEqual(page.objects.map((o) => o.key), ['plain']);
  });

  it('pages delimiter listings without repeating a prefix', async () => {
    await putAll(storage(), ['a/1', 'a/2', 'a/3', 'b', 'c/1', 'c/2', 'd', 'e/1']);
    const seen: string[] = [];
    let cursor: string | undefined;
    let pages = 0;
    do {
      const page: ListPage = await storage().list({ delimiter: '/', limit: 2, cursor });
      assert.ok(page.objects.length + page.prefixes.length <= 2);
      seen.push(...page.prefixes, ...page.objects.map((o) => o.key));
      cursor = page.cursor;
      pages++;
    } while (cursor);
    assert.deepEqual(byteSorted(seen), ['a/', 'b', 'c/', 'd', 'e/']);
    assert.equal(pages, 3);
  });

  it('starts strictly after startAfter when there is no cursor', async () => {
    await putAll(storage(), ['a', 'b/1', 'b/2', 'c', 'é']);
    assert.deepEqual((await storage().list({ startAfter: 'b/1' })).objects.map((o) => o.key), ['b/2', 'c', 'é']);
    assert.deepEqual((await storage().list({ startAfter: 'b/0' })).objects.map((o) => o.key), ['b/1', 'b/2', 'c', 'é']);
    assert.deepEqual((await storage().list({ prefix: 'b/', startAfter: 'b/1' })).objects.map((o) => o.key), ['b/2']);
    const folded = await storage().list({ startAfter: 'a', delimiter: '/' });
    assert.deepEqual([folded.objects.map((o) => o.key), folded.prefixes], [['c', 'é'], ['b/']]);
    const paged = await storage().list({ startAfter: 'a', limit: 2 });
    assert.deepEqual(paged.objects.map((o) => o.key), ['b/1', 'b/2']);
    assert.deepEqual((await storage().list({ startAfter: 'a', cursor: paged.cursor })).objects.map((o) => o.key), ['c', 'é'], 'the cursor wins');
    assert.deepEqual((await storage().list({ startAfter: 'é' })).objects, []);
  });

  it('returns full info for listed objects', async () => {
    await storage().put('info/x.json', '{"a":1}', { metadata: { owner: 'u1' } });
    const [listed] = (await storage().list({ prefix: 'info/' })).objects;
    const stat = await storage().stat('info/x.json');
    assert.ok(listed);
    assert.equal(listed.size, 7);
    assert.equal(listed.etag, stat.etag);
    assert.equal(listed.sha256, stat.sha256);
    assert.equal(listed.contentType, 'application/json');
    assert.deepEqual(listed.metadata, { owner: 'u1' });
  });

  it('pages 2,500 objects at 100 with writes between pages, never repeating or skipping', async () => {
    const keys = Array.from({ length: 2500 }, (_, i) => `bulk/${String(i * 7919 % 2500).padStart(4, '0')}-${i % 3 === 0 ? 'é' : 'x'}`);
    await putAll(storage(), keys, 32);
    const seen: string[] = [];
    let cursor: string | undefined;
    let round = 0;
    const added = new Set<string>();
    do {
      const page: ListPage = await storage().list({ prefix: 'bulk/', limit: 100, cursor });
      assert.ok(page.objects.length <= 100);
      seen.push(...page.objects.map((o) => o.key));
      cursor = page.cursor;
      // Writes between pages: new keys before and after the cursor, and an overwrite of a listed key.
      round++;
      for (const key of [`bulk/${String(round % 25).padStart(4, '0')}-new`, `bulk/zz-${round}`]) {
        await storage().put(key, 'n');
        added.add(key);
      }
      if (seen[0]) await storage().put(seen[0], 'rewritten');
    } while (cursor);
    const original = seen.filter((k) => !added.has(k));
    assert.equal(new Set(seen).size, seen.length, 'no key may appear twice');
    assert.deepEqual(byteSorted(original), byteSorted(keys), 'every original key appears exactly once');
    assert.deepEqual(seen, byteSorted(seen), 'pages come in byte order');
    assert.ok(seen.includes('bulk/zz-1'), 'keys written after the cursor are picked up');
    const all = await allKeys(storage(), 'bulk/');
    assert.equal(all.length, 2500 + added.size);
  });

  it('rejects limits outside 1..1000 and malformed cursors', async () => {
    await rejectsWith(storage().list({ limit: 0 }), 'E_INVALID_ARGUMENT', 'limit');
    await rejectsWith(storage().list({ limit: 1001 }), 'E_INVALID_ARGUMENT', 'limit');
    await rejectsWith(storage().list({ limit: 2.5 }), 'E_INVALID_ARGUMENT', 'limit');
    await rejectsWith(storage().list({ cursor: 'not a cursor!' }), 'E_INVALID_ARGUMENT', 'cursor');
    await rejectsWith(storage().list({ delimiter: '' }), 'E_INVALID_ARGUMENT', 'delimiter');
  });

  it('iterates everything with listAll across pages', async () => {
    const keys = Array.from({ length: 1205 }, (_, i) => `all/${i}`);
    await putAll(storage(), keys, 32);
    assert.deepEqual(await allKeys(storage(), 'all/'), byteSorted(keys));
  });

  it('reports usage in objects and bytes, optionally under a prefix', async () => {
    await storage().put('u/a', Buffer.alloc(100));
    await storage().put('u/b', Buffer.alloc(50));
    await storage().put('v/c', Buffer.alloc(7));
    assert.deepEqual(await storage().usage(), { objects: 3, bytes: 157 });
    assert.deepEqual(await storage().usage({ prefix: 'u/' }), { objects: 2, bytes: 150 });
    assert.deepEqual(await storage().usage({ prefix: 'none/' }), { objects: 0, bytes: 0 });
  });
}
