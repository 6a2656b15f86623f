/**
 * The web console in a real browser (Debian's Chromium, driven by playwright-core),
 * against the service as a real process with API keys, quotas and an upload template:
 * log in, browse a folder (names rendered as text), see the folder's quota, upload three
 * files (one of 50 MB) by the file picker with progress while the service is killed and
 * restarted mid-upload (the upload resumes and completes) and one by drag and drop, search by prefix, page through a folder larger than
 * a page by its cursor, preview an image thumbnail and play an audio and a video file by a
 * signed link, open a share link in a fresh browser, delete with confirmation, reach
 * the controls by keyboard with a visible focus; and the backend is checked after each
 * step. Screenshots of the main screens are left in test-results/console/. Also: the
 * console with auth off, and STOWAGE_CONSOLE=false.
 */
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { chromium, type Browser, type Page } from 'playwright-core';
import { buildApp, createStorage, type Storage } from '../../src/index.js';
import { freePort, LISTENING, runServerWithin, solidPng } from '../http/helpers.js';
import { CHROMIUM, CHROMIUM_ARGS, requireChromium } from '../chromium.js';
import { property, screenshot, until, wav } from './helpers.js';

const SHOTS = join(process.cwd(), 'test-results', 'console');
const ALICE = 'console-alice-key-0123456789abcdef';
const BIG = 50 * 1024 * 1024;
/** The console's page of a listing (PAGE in src/console/app.js). */
const PAGE = 50;

const shot = (page: Page, name: string) => screenshot(page, SHOTS, name);

let browser: Browser;
before(async () => {
  requireChromium();
  await mkdir(SHOTS, { recursive: true });
  browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
});
after(async () => browser?.close());

describe('console: the service with API keys, in Chromium', () => {
  let root: string;
  let files: string;
  let env: Record<string, string>;
  let server: ChildProcess;
  let base: string;
  let storage: Storage;
  const png = solidPng(640, 480, [30, 120, 200]);

  const start = async () => {
    const started = await runServerWithin(env, LISTENING);
    assert.equal(started.code, null, started.output);
    server = started.child;
  };

  before(async () => {
    root = await mkdtemp(join(tmpdir(), 'stowage-console-'));
    files = await mkdtemp(join(tmpdir(), 'stowage-console-files-'));
    const port = await freePort();
    base = `http://127.0.0.1:${port}`;
    env = {
      HOST: '127.0.0.1', PORT: String(port), STORAGE_LOCAL_PATH: root, STOWAGE_ACCESS_LOG: 'false',
      STORAGE_SIGNING_SECRET: 'console-test-signing-secret-0123456789',
      STOWAGE_AUTH: JSON.stringify({ keys: [{ key: ALICE, identity: 'alice', prefixes: ['users/{userId}/'], permissions: ['read', 'write', 'delete', 'list', 'presign'] }] }),
      STOWAGE_UPLOAD_POLICIES: JSON.stringify({ console: { template: 'users/{userId}/uploads/{uuid}.{ext}', maxSize: 100 * 1024 * 1024, allowedTypes: '*' } }),
      STOWAGE_QUOTAS: JSON.stringify({ 'users/*/': { maxBytes: 200 * 1024 * 1024 } }),
    };
    storage = createStorage({ driver: 'fs', root });
    await storage.put('users/alice/photo.png', png);
    await storage.put('users/alice/notes.txt', 'shopping list\n');
    await storage.put('users/alice/song.wav', wav(2), { contentType: 'audio/wav' });
    await storage.put('users/alice/<img src=x onerror="document.title=1">.txt', 'a hostile name');
    await storage.put('users/alice/clip.webm', await readFile(join(import.meta.dirname, 'fixtures', 'clip.webm')), { contentType: 'video/webm' });
    for (let i = 0; i < PAGE + 10; i++) await storage.put(`users/alice/many/item-${String(i).padStart(3, '0')}.txt`, `item ${i}`);
    await writeFile(join(files, 'small.jpg'), Buffer.concat([solidPng(10, 10, [1, 2, 3])]));
    await writeFile(join(files, 'readme.txt'), 'uploaded from the console\n');
    await writeFile(join(files, 'big.bin'), randomBytes(BIG));
    await start();
  });
  after(async () => {
    server?.kill('SIGKILL');
    await storage?.close();
    await rm(root, { recursive: true, force: true });
    await rm(files, { recursive: true, force: true });
  });

  it('logs in, browses, uploads through a restart, previews, shares and deletes', async () => {
    const context = await browser.newContext({ viewport: { width: 1100, height: 800 } });
    const page = await context.newPage();
    const titles: string[] = [];
    page.on('dialog', (d) => void d.dismiss());
    await page.goto(`${base}/console/#${encodeURIComponent('users/alice/')}`);
    await page.locator('#login').waitFor();
    await shot(page, '1-login');
    await page.fill('#token', ALICE);
    await page.press('#token', 'Enter');

    // Browse: names as text (the hostile one stays text), and the folder's quota.
    await page.locator('#rows tr', { hasText: 'photo.png' }).waitFor();
    assert.equal(await page.locator('#rows img').count(), 0, 'a file name never becomes markup');
    await page.locator('#rows', { hasText: '<img src=x onerror="document.title=1">.txt' }).waitFor();
    await page.locator('#usage', { hasText: 'of 200.0 MiB' }).waitFor();
    titles.push(await page.title());
    await shot(page, '2-browse');

    // Search by prefix within the folder, then clear it.
    await page.fill('#search', 'pho');
    await until('the search shows only photo.png', async () => (await page.locator('#rows tr').count()) === 1);
    assert.equal(await page.locator('#rows tr').textContent().then((t) => t?.includes('photo.png')), true);
    await shot(page, '2b-search');
    await page.fill('#search', '');
    await page.locator('#rows tr', { hasText: 'song.wav' }).waitFor();

    // A folder of more than a page: the next page comes by its cursor.
    await page.locator('#rows a.folder', { hasText: 'many/' }).click();
    await until(`the first ${PAGE} rows`, async () => (await page.locator('#rows tr').count()) === PAGE);
    assert.equal(await page.locator('#more').isVisible(), true);
    await page.click('#more');
    await until('the next page appended', async () => (await page.locator('#rows tr').count()) === PAGE + 10);
    assert.equal(await page.locator('#more').isHidden(), true, 'no further page');
    const names = await page.locator('#rows button.object').allTextContents();
    assert.deepEqual(names, Array.from({ length: PAGE + 10 }, (_, n) => `item-${String(n).padStart(3, '0')}.txt`), 'both pages, in order, once each');
    await page.goto(`${base}/console/#${encodeURIComponent('users/alice/')}`);
    await page.locator('#rows tr', { hasText: 'photo.png' }).waitFor();

    // Upload three files; kill the service while the big one is on its way, and restart it.
    const cdp = await context.newCDPSession(page);
    await cdp.send('Network.enable');
    await cdp.send('Network.emulateNetworkConditions', { offline: false, latency: 0, downloadThroughput: -1, uploadThroughput: 10 * 1024 * 1024 });
    await page.setInputFiles('#files', [join(files, 'small.jpg'), join(files, 'readme.txt'), join(files, 'big.bin')]);
    const bigBar = page.locator('progress[aria-label="Upload of big.bin"]');
    await bigBar.waitFor();
    await until('the big upload is under way', async () => Number(await property(bigBar, 'value')) >= 10);
    const killedAt = Number(await bigBar.getAttribute('value'));
    server.kill('SIGKILL');
    await shot(page, '3-upload-interrupted');
    assert.ok(killedAt < 100, `killed mid-upload, at ${killedAt}%`);
    await new Promise((resolve) => setTimeout(resolve, 500));
    await start();
    await page.locator('#uploads li.done', { hasText: 'big.bin' }).waitFor({ timeout: 60_000 });
    await page.locator('#uploads li.done').nth(2).waitFor();
    await cdp.send('Network.emulateNetworkConditions', { offline: false, latency: 0, downloadThroughput: -1, uploadThroughput: -1 });
    await shot(page, '4-uploaded');
    const uploaded = [];
    for await (const info of storage.listAll({ prefix: 'users/alice/uploads/' })) uploaded.push(info);
    assert.equal(uploaded.length, 3);
    const big = uploaded.find((o) => o.size === BIG);
    assert.equal(big?.sha256, createHash('sha256').update(await storage.get(big?.key as string)).digest('hex'));
    assert.deepEqual(uploaded.map((o) => o.metadata['original-name']).sort(), ['big.bin', 'readme.txt', 'small.jpg']);

    // Drag and drop: a file dropped on the drop zone is uploaded too.
    const dropped = await page.evaluateHandle(() => {
      // Typed by shape: this file is compiled for Node, without the DOM's types.
      const g = globalThis as unknown as { DataTransfer: new () => { items: { add(f: unknown): void } }; File: new (parts: string[], name: string, o: { type: string }) => unknown };
      const transfer = new g.DataTransfer();
      transfer.items.add(new g.File(['dropped on the console\n'], 'dropped.txt', { type: 'text/plain' }));
      return transfer;
    });
    await page.dispatchEvent('#drop', 'drop', { dataTransfer: dropped });
    await page.locator('#uploads li.done', { hasText: 'dropped.txt' }).waitFor();
    const originals: string[] = [];
    for await (const info of storage.listAll({ prefix: 'users/alice/uploads/' })) originals.push(info.metadata['original-name'] ?? '');
    assert.ok(originals.includes('dropped.txt'), `the dropped file is stored: ${originals.join(', ')}`);

    // An image's details, with its thumbnail (a variant).
    await page.locator('button.object', { hasText: /^photo\.png$/ }).click();
    const thumb = page.locator('#preview img.thumb');
    await thumb.waitFor();
    await until('the thumbnail is loaded', async () => (await property(thumb, 'naturalWidth')) === 200);
    await page.locator('#facts', { hasText: (await storage.stat('users/alice/photo.png')).sha256 as string }).waitFor();
    await shot(page, '5-details');

    // A share link, opened in a fresh browser with no credentials.
    await page.selectOption('#expiry', '300');
    await page.click('#share');
    await page.locator('#share-link', { hasText: '/files/users/alice/photo.png?' }).waitFor();
    const link = (await page.locator('#share-link').textContent()) ?? '';
    const stranger = await browser.newContext();
    const shared = await (await stranger.newPage()).goto(link);
    assert.equal(shared?.status(), 200);
    assert.deepEqual(await shared?.body(), png);
    await stranger.close();

    // Audio plays from a signed link (range requests).
    await page.click('#close-details');
    await page.locator('button.object', { hasText: /^song\.wav$/ }).click();
    const audio = page.locator('#preview audio');
    await audio.waitFor();
    await until('the audio is playable', async () => Number(await property(audio, 'duration')) > 1.5);

    // And video.
    await page.click('#close-details');
    await page.locator('button.object', { hasText: /^clip\.webm$/ }).click();
    const video = page.locator('#preview video');
    await video.waitFor();
    await until('the video is playable', async () => Number(await property(video, 'duration')) > 1.5 && (await property(video, 'videoWidth')) === 96);
    await shot(page, '5b-video');

    // Delete, with confirmation.
    await page.click('#close-details');
    await page.locator('button.object', { hasText: /^notes\.txt$/ }).click();
    await page.locator('#preview pre', { hasText: 'shopping list' }).waitFor();
    await page.click('#delete');
    await page.locator('#confirm[open]').waitFor();
    await shot(page, '6-confirm-delete');
    await page.click('#confirm-delete');
    await page.locator('#browser:not([hidden])').waitFor();
    assert.equal(await storage.exists('users/alice/notes.txt'), false);
    assert.equal(await storage.exists('users/alice/photo.png'), true);

    // Keyboard: the first Tab stops land on labelled controls, with a visible focus.
    await page.keyboard.press('Tab');
    await page.keyboard.press('Tab');
    const focused = await page.locator(':focus').evaluate((el: unknown) => {
      // Typed by shape: this file is compiled for Node, without the DOM's types.
      const e = el as { tagName: string; textContent: string | null; labels?: { textContent: string | null }[]; getAttribute(n: string): string | null; ownerDocument: { defaultView: { getComputedStyle(e: unknown): { outlineStyle: string } } } };
      return { tag: e.tagName, outline: e.ownerDocument.defaultView.getComputedStyle(e).outlineStyle, label: e.getAttribute('aria-label') || e.labels?.[0]?.textContent || e.textContent || '' };
    });
    assert.notEqual(focused.outline, 'none', `the focus is visible on ${focused.tag}`);
    assert.ok(focused.label.trim() !== '', `the focused ${focused.tag} has a name`);
    assert.deepEqual(titles, ['Stowage console'], 'no script from a name ran');
    await context.close();
  });
});

describe('console: auth off, and turned off', () => {
  it('browses without a login on a loopback service with no keys', async () => {
    const storage = createStorage({ driver: 'memory' });
    await storage.put('open/hello.txt', 'hi');
    const app = await buildApp({ storage, logger: false });
    const base = await app.listen({ host: '127.0.0.1', port: 0 });
    const context = await browser.newContext();
    try {
      const page = await context.newPage();
      const res = await page.goto(`${base}/console`);
      assert.match(res?.headers()['content-security-policy'] ?? '', /script-src 'self'/);
      await page.locator('#rows a.folder', { hasText: 'open/' }).click();
      await page.locator('button.object', { hasText: 'hello.txt' }).waitFor();
      assert.equal(await page.locator('#login').isHidden(), true);
    } finally {
      await context.close();
      await app.close();
    }
  });

  it('is not served with console: false (STOWAGE_CONSOLE=false)', async () => {
    const app = await buildApp({ storage: createStorage({ driver: 'memory' }), logger: false, console: false });
    try {
      const res = await app.inject({ method: 'GET', url: '/console/' });
      assert.equal(res.statusCode, 404);
    } finally {
      await app.close();
    }
  });
});
