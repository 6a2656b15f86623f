/**
 * Conformance cases for internal files (`putInternal` and the rest of the contract): what
 * a driver with `capabilities.internalFiles` keeps for Stowage itself, beside the objects
 * and never among them; a driver without it refuses each operation with E_UNSUPPORTED.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { it } from 'node:test';
import { rejectsWith } from './harness.js';
import type { StorageGetter } from './suite.js';

/** Every name under `prefix`, page by page. */
async function allNames(storage: StorageGetter, prefix: string): Promise<{ names: string[]; pages: number }> {
  const names: string[] = [];
  let cursor: string | undefined;
  let pages = 0;
  do {
    const page = await storage().driver.listInternal(prefix, cursor);
    names.push(...page.names);
    cursor = page.cursor;
    pages += 1;
  } while (cursor !== undefined);
  return { names, pages };
}

export function internalCases(storage: StorageGetter): void {
  it('stores, replaces, reads and deletes internal files, never as objects', async (t) => {
    const s = storage();
    if (!s.capabilities.internalFiles) {
      await rejectsWith(s.driver.putInternal('a/b', new Uint8Array([1])), 'E_UNSUPPORTED');
      await rejectsWith(s.driver.readInternal('a/b'), 'E_UNSUPPORTED');
      assert.deepEqual(await s.driver.listInternal(''), { names: [] });
      return t.skip('no internal files here');
    }
    assert.equal(await s.driver.readInternal('variants/x/thumb.webp'), undefined, 'a missing file resolves undefined');
    const bytes = randomBytes(70_000);
    await s.driver.putInternal('variants/x/thumb.webp', bytes);
    assert.deepEqual(Buffer.from((await s.driver.readInternal('variants/x/thumb.webp'))!), bytes);
    await s.driver.putInternal('variants/x/thumb.webp', Buffer.from('second'));
    assert.equal(Buffer.from((await s.driver.readInternal('variants/x/thumb.webp'))!).toString(), 'second', 'a put replaces');
    await s.driver.putInternal('variants/x/empty', new Uint8Array());
    assert.equal((await s.driver.readInternal('variants/x/empty'))?.byteLength, 0, 'an empty file is a file');

    const listed = await s.list({ prefix: '', delimiter: '/' });
    assert.deepEqual(listed.objects, [], 'internal files are not objects');
    assert.deepEqual(listed.prefixes, []);
    // Backends with a reserved area refuse the key; the memory driver has none to reach.
    await assert.rejects(s.stat('.stowage/internal/variants/x/thumb.webp'), (err: { code?: string }) => err.code === 'E_INVALID_KEY' || err.code === 'E_NOT_FOUND');

    await s.driver.deleteInternal(['variants/x/thumb.webp', 'variants/never/was']);
    assert.equal(await s.driver.readInternal('variants/x/thumb.webp'), undefined);
    assert.deepEqual((await allNames(storage, 'variants/')).names, ['variants/x/empty']);
    await s.driver.deleteInternal([]);
    await s.driver.deleteInternal(['variants/x/empty']);
    assert.deepEqual((await allNames(storage, '')).names, []);
  });

  it('lists names under a prefix in byte order, page by page after a cursor', async (t) => {
    const s = storage();
    if (!s.capabilities.internalFiles) return t.skip('no internal files here');
    // A folder sorts as its name plus "/": "a-b" comes before "a/x" ("-" < "/"), and "a0" after.
    const names = ['a/x', 'a-b', 'a0', 'a/y/z', 'b/c', 'a/a'];
    for (const name of names) await s.driver.putInternal(name, Buffer.from(name));
    assert.deepEqual((await allNames(storage, '')).names, ['a-b', 'a/a', 'a/x', 'a/y/z', 'a0', 'b/c']);
    assert.deepEqual((await allNames(storage, 'a/')).names, ['a/a', 'a/x', 'a/y/z']);
    assert.deepEqual((await s.driver.listInternal('a/', 'a/a')).names, ['a/x', 'a/y/z'], 'strictly after the cursor');
    assert.deepEqual((await allNames(storage, 'nothing/')).names, []);

    const many = Array.from({ length: 1005 }, (_, i) => `many/${String(i).padStart(4, '0')}`);
    for (let i = 0; i < many.length; i += 50) await Promise.all(many.slice(i, i + 50).map((name) => s.driver.putInternal(name, new Uint8Array([1]))));
    const paged = await allNames(storage, 'many/');
    assert.deepEqual(paged.names, many, 'pages never repeat or skip a name');
    assert.equal(paged.pages, 2);
  });

  it('refuses names that could leave the area or hide among temp files', async (t) => {
    const s = storage();
    if (!s.capabilities.internalFiles) return t.skip('no internal files here');
    for (const bad of ['', '../x', 'a/../b', '.hidden', 'a//b', '/abs', 'a/', 'sp ace', 'x'.repeat(513)]) {
      await rejectsWith(s.driver.putInternal(bad, new Uint8Array([1])), 'E_INVALID_ARGUMENT');
      await rejectsWith(s.driver.readInternal(bad), 'E_INVALID_ARGUMENT');
    }
    await rejectsWith(s.driver.listInternal('a'), 'E_INVALID_ARGUMENT');
  });
}
