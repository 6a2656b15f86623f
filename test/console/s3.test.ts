/**
 * The web console on the S3 backend (the real RGW), in Chromium: log in with an API key,
 * browse, upload two files over tus (sessions as multipart uploads in the bucket), preview
 * a thumbnail rendered from the bucket, play audio from RGW's own presigned link (the
 * page's policy lets media come from the backend), open a share link (RGW's) in a fresh
 * browser, and delete; the bucket is checked after each step. Screenshots go to
 * test-results/console-s3/.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { chromium, type Browser } from 'playwright-core';
import type { FastifyInstance } from 'fastify';
import { Authenticator, buildApp, type Storage } from '../../src/index.js';
import { emptyStorage, freshS3Storage, s3TestEnv } from '../drivers/s3/env.js';
import { solidPng } from '../http/helpers.js';
import { CHROMIUM, CHROMIUM_ARGS, requireChromium } from '../chromium.js';
import { property, screenshot, until, wav } from './helpers.js';

const SHOTS = join(process.cwd(), 'test-results', 'console-s3');
const KEY = 'console-s3-key-0123456789abcdef';

describe('console: the S3 backend (RGW), in Chromium', () => {
  let browser: Browser;
  let storage: Storage;
  let app: FastifyInstance;
  let base: string;
  let files: string;
  const png = solidPng(480, 320, [200, 90, 40]);

  before(async () => {
    requireChromium();
    await mkdir(SHOTS, { recursive: true });
    files = await mkdtemp(join(tmpdir(), 'stowage-console-s3-'));
    storage = await freshS3Storage('console');
    await storage.put('team/photo.png', png, { contentType: 'image/png' });
    await storage.put('team/song.wav', wav(2), { contentType: 'audio/wav' });
    const auth = new Authenticator({ keys: [{ key: KEY, identity: 'team', prefixes: ['team/'], permissions: ['read', 'write', 'delete', 'list', 'presign'] }] });
    const uploadPolicies = { team: { template: 'team/uploads/{uuid}.{ext}', maxSize: 32 * 1024 * 1024, allowedTypes: '*' as const } };
    app = await buildApp({ storage, auth, logger: false, uploadPolicies });
    base = await app.listen({ host: '127.0.0.1', port: 0 });
    await writeFile(join(files, 'report.txt'), 'quarterly figures\n');
    await writeFile(join(files, 'archive.bin'), randomBytes(7 * 1024 * 1024));
    browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
  });
  after(async () => {
    await browser?.close();
    await app?.close();
    if (storage) await emptyStorage(storage);
    if (files) await rm(files, { recursive: true, force: true });
  });

  it('logs in, uploads, previews, plays from RGW, shares and deletes', async () => {
    const context = await browser.newContext({ viewport: { width: 1100, height: 800 } });
    const page = await context.newPage();
    page.on('dialog', (d) => void d.dismiss());
    await page.goto(`${base}/console/#${encodeURIComponent('team/')}`);
    await page.fill('#token', KEY);
    await page.press('#token', 'Enter');
    await page.locator('#rows tr', { hasText: 'photo.png' }).waitFor();

    await page.setInputFiles('#files', [join(files, 'report.txt'), join(files, 'archive.bin')]);
    await page.locator('#uploads li.done').nth(1).waitFor({ timeout: 60_000 });
    await screenshot(page, SHOTS, '1-uploaded');
    const uploaded = [];
    for await (const info of storage.listAll({ prefix: 'team/uploads/' })) uploaded.push(info);
    assert.deepEqual(uploaded.map((o) => [o.metadata['original-name'], o.size]).sort(), [['archive.bin', 7 * 1024 * 1024], ['report.txt', 18]]);
    assert.deepEqual(await storage.sessions.list(), [], 'no session left in the bucket');

    await page.locator('button.object', { hasText: /^photo\.png$/ }).click();
    const thumb = page.locator('#preview img.thumb');
    await thumb.waitFor();
    await until('the thumbnail is loaded', async () => (await property(thumb, 'naturalWidth')) === 200);

    await page.click('#share');
    const link = page.locator('#share-link');
    await until('a share link', async () => ((await link.textContent()) ?? '').startsWith(s3TestEnv().endpoint));
    const stranger = await browser.newContext();
    const shared = await (await stranger.newPage()).goto((await link.textContent()) ?? '');
    assert.equal(shared?.status(), 200);
    assert.deepEqual(await shared?.body(), png);
    await stranger.close();
    await screenshot(page, SHOTS, '2-details');

    await page.click('#close-details');
    await page.locator('button.object', { hasText: /^song\.wav$/ }).click();
    const audio = page.locator('#preview audio');
    await audio.waitFor();
    assert.ok(String(await audio.getAttribute('src')).startsWith(s3TestEnv().endpoint), 'played from RGW\'s presigned link');
    await until('the audio is playable', async () => Number(await property(audio, 'duration')) > 1.5);

    await page.click('#delete');
    await page.locator('#confirm[open]').waitFor();
    await page.click('#confirm-delete');
    await page.locator('#browser:not([hidden])').waitFor();
    assert.equal(await storage.exists('team/song.wav'), false);
    assert.equal(await storage.exists('team/photo.png'), true);
    await context.close();
  });
});
