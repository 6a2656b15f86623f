/**
 * `stowage variants build|purge` as a real process on an fs storage, with the variants of
 * STOWAGE_IMAGE_VARIANTS: build renders every image's variants and lists what it skipped,
 * the service's storage then reads them back, purge is a dry run until --yes.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { createStorageFromEnv } from '../../src/index.js';
import { photo } from '../images/store-cases.js';
import { cli } from './run.js';

const VARIANTS = JSON.stringify({ thumb: { width: 64, height: 64, fit: 'cover', format: 'webp' }, card: { width: 320, format: 'jpeg' } });

describe('stowage variants', () => {
  let root: string;
  let env: Record<string, string>;
  before(async () => {
    root = await mkdtemp(join(tmpdir(), 'stowage-cli-variants-'));
    env = { STORAGE_LOCAL_PATH: root, STOWAGE_IMAGE_VARIANTS: VARIANTS };
    const storage = createStorageFromEnv(env);
    await storage.put('shop/a.jpg', await photo(500, 400));
    await storage.put('shop/b.jpg', await photo(200, 500));
    await storage.put('shop/fake.jpg', 'not really a JPEG', { contentType: 'image/jpeg' });
    await storage.put('shop/readme.txt', 'text');
    await storage.close();
  });
  after(async () => rm(root, { recursive: true, force: true }));

  it('builds the variants of every image under a prefix, and reports what it skipped', async () => {
    const built = await cli(['variants', 'build', 'shop/', '--json'], { env });
    assert.equal(built.code, 0, built.stderr);
    const report = JSON.parse(built.stdout) as { images: number; renditions: number; skipped: { key: string; reason: string }[] };
    assert.deepEqual([report.images, report.renditions], [2, 4]);
    assert.deepEqual(report.skipped.map((s) => s.key), ['shop/fake.jpg']);
    assert.match(report.skipped[0]?.reason ?? '', /not an image/);
    const storage = createStorageFromEnv(env);
    try {
      const card = await storage.variant('shop/a.jpg', 'card');
      assert.deepEqual([card.cached, card.contentType, card.width], [true, 'image/jpeg', 320]);
    } finally {
      await storage.close();
    }
    const one = await cli(['variants', 'build', 'shop/', '--variant', 'nope'], { env });
    assert.equal(one.code, 2, 'a usage error');
    assert.match(one.stderr, /no image variant "nope"; the configured ones are thumb, card/);
  });

  it('purges stored variants that can no longer be served: a dry run, then with --yes', async () => {
    const storage = createStorageFromEnv(env);
    try {
      await storage.driver.delete('shop/b.jpg'); // behind Storage's back: its variants stay
    } finally {
      await storage.close();
    }
    const dry = await cli(['variants', 'purge'], { env });
    assert.equal(dry.code, 0, dry.stderr);
    assert.match(dry.stdout, /would remove 2 of 4 stored variants \(dry run: add --yes to act\)/);
    const done = await cli(['variants', 'purge', '--yes', '--json'], { env });
    assert.deepEqual(JSON.parse(done.stdout), { acted: true, scanned: 4, removed: 2 });
    const all = await cli(['variants', 'purge', '--all', '--yes'], { env });
    assert.match(all.stdout, /removed 2 of 2 stored variants/);
  });

  it('refuses a bad STOWAGE_IMAGE_VARIANTS, naming the variable', async () => {
    const bad = await cli(['variants', 'purge'], { env: { ...env, STOWAGE_IMAGE_VARIANTS: '{"thumb":{"width":0}}' } });
    assert.notEqual(bad.code, 0);
    assert.match(bad.stderr, /STOWAGE_IMAGE_VARIANTS.*width must be a whole number from 1 to 8192/);
  });
});
