/**
 * Uppy (its Dashboard and Tus plugin, from the `uppy` bundle) in Chromium, on a page of
 * another origin, uploading to the service's tus endpoint through CORS: three files, one
 * sent while the browser goes offline half way (Uppy resumes from the offset the service
 * reports), each `upload-success` naming the stored key through the exposed
 * `Stowage-Object-Key` header; the backend holds the exact bytes under the template's keys.
 * Screenshots go to test-results/uppy/.
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { createRequire } from 'node:module';
import { after, before, describe, it } from 'node:test';
import { chromium, type Browser } from 'playwright-core';
import type { FastifyInstance } from 'fastify';
import { buildApp, createStorage, type Storage } from '../../../src/index.js';
import { CHROMIUM, CHROMIUM_ARGS, requireChromium } from '../../chromium.js';
import { photo } from '../../images/store-cases.js';

const SHOTS = join(process.cwd(), 'test-results', 'uppy');
const BIG = 6 * 1024 * 1024;
const UPPY_DIST = join(dirname(createRequire(import.meta.url).resolve('uppy/package.json')), 'dist');

/** The page's own script (plain JS, served as it is): Uppy with an inline Dashboard and the Tus plugin. */
const PAGE_SCRIPT = `
window.results = [];
window.progress = {};
const endpoint = new URLSearchParams(location.search).get('endpoint');
const uppy = new Uppy.Uppy({ autoProceed: false })
  .use(Uppy.Dashboard, { inline: true, target: '#dashboard', height: 420, proudlyDisplayPoweredByUppy: false })
  .use(Uppy.Tus, { endpoint, chunkSize: 512 * 1024, retryDelays: [0, 500, 1000, 2000, 3000, 5000] });
uppy.on('upload-progress', (file, p) => { window.progress[file.name] = p.bytesTotal ? p.bytesUploaded / p.bytesTotal : 0; });
uppy.on('upload-success', (file, response) => {
  window.results.push({ name: file.name, key: response.body.xhr.getResponseHeader('Stowage-Object-Key'), uploadURL: response.uploadURL });
});
uppy.on('complete', (result) => { window.done = { successful: result.successful.length, failed: result.failed.length }; });
`;
const PAGE = `<!DOCTYPE html><html><head><title>Uppy to Stowage</title><link rel="stylesheet" href="/uppy.min.css"></head>
<body><div id="dashboard"></div><script src="/uppy.min.js"></script><script src="/page.js"></script></body></html>`;

describe('tus: Uppy in Chromium', () => {
  let browser: Browser;
  let pageServer: Server;
  let pageOrigin: string;
  let app: FastifyInstance;
  let base: string;
  let storage: Storage;
  let root: string;
  let files: string;
  /** The methods of the tus requests the service received, in order. */
  const requests: string[] = [];

  before(async () => {
    requireChromium();
    await mkdir(SHOTS, { recursive: true });
    root = await mkdtemp(join(tmpdir(), 'stowage-uppy-'));
    files = await mkdtemp(join(tmpdir(), 'stowage-uppy-files-'));
    const assets: Record<string, [string, string | Buffer]> = {
      '/': ['text/html', PAGE],
      '/page.js': ['text/javascript', PAGE_SCRIPT],
      '/uppy.min.js': ['text/javascript', await readFile(join(UPPY_DIST, 'uppy.min.js'))],
      '/uppy.min.css': ['text/css', await readFile(join(UPPY_DIST, 'uppy.min.css'))],
    };
    pageServer = createServer((req, res) => {
      const asset = assets[new URL(req.url ?? '/', 'http://page').pathname];
      if (!asset) return void res.writeHead(404).end();
      res.writeHead(200, { 'content-type': asset[0] }).end(asset[1]);
    });
    await new Promise<void>((resolve) => pageServer.listen(0, '127.0.0.1', resolve));
    pageOrigin = `http://127.0.0.1:${(pageServer.address() as AddressInfo).port}`;
    storage = createStorage({ driver: 'fs', root });
    const uploadPolicies = { media: { template: 'media/{date}/{uuid}.{ext}', maxSize: 64 * 1024 * 1024, allowedTypes: '*' as const } };
    app = await buildApp({ storage, logger: false, uploadPolicies, corsOrigins: [pageOrigin] });
    app.addHook('onRequest', async (request) => void (request.url.startsWith('/api/tus/') && requests.push(request.method)));
    base = await app.listen({ host: '127.0.0.1', port: 0 });
    await writeFile(join(files, 'holiday.jpg'), await photo(320, 240));
    await writeFile(join(files, 'notes.txt'), 'written in the browser\n'.repeat(50));
    await writeFile(join(files, 'recording.bin'), randomBytes(BIG));
    browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
  });
  after(async () => {
    await browser?.close();
    await app?.close();
    pageServer?.close();
    for (const dir of [root, files]) if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('uploads three files with the Dashboard, resumes one after the browser was offline, and learns each stored key', async () => {
    const context = await browser.newContext({ viewport: { width: 900, height: 600 } });
    const page = await context.newPage();
    const errors: string[] = [];
    page.on('pageerror', (err) => errors.push(err.message));
    await page.goto(`${pageOrigin}/?endpoint=${encodeURIComponent(`${base}/api/tus/`)}`);
    await page.setInputFiles('.uppy-Dashboard-input', [join(files, 'holiday.jpg'), join(files, 'notes.txt'), join(files, 'recording.bin')]);
    await page.locator('.uppy-Dashboard-Item', { hasText: 'recording.bin' }).waitFor();
    await page.screenshot({ path: join(SHOTS, '1-chosen.png') });

    // Slow the upload so it can be cut off half way; then offline, then back.
    const cdp = await context.newCDPSession(page);
    await cdp.send('Network.enable');
    await cdp.send('Network.emulateNetworkConditions', { offline: false, latency: 0, downloadThroughput: -1, uploadThroughput: 2 * 1024 * 1024 });
    await page.click('.uppy-StatusBar-actionBtn--upload');
    await page.waitForFunction(() => ((globalThis as unknown as { progress: Record<string, number> }).progress['recording.bin'] ?? 0) > 0.2, undefined, { timeout: 60_000 });
    await cdp.send('Network.emulateNetworkConditions', { offline: true, latency: 0, downloadThroughput: -1, uploadThroughput: -1 });
    await new Promise((resolve) => setTimeout(resolve, 1500));
    await page.screenshot({ path: join(SHOTS, '2-offline.png') });
    const offsets = (await storage.sessions.list()).map((s) => s.offset);
    const beforeResume = requests.length;
    await cdp.send('Network.emulateNetworkConditions', { offline: false, latency: 0, downloadThroughput: -1, uploadThroughput: -1 });
    await page.waitForFunction(() => (globalThis as unknown as { done?: unknown }).done !== undefined, undefined, { timeout: 120_000 });
    await page.screenshot({ path: join(SHOTS, '3-complete.png') });

    assert.deepEqual(await page.evaluate(() => (globalThis as unknown as { done: unknown }).done), { successful: 3, failed: 0 });
    assert.ok(offsets.some((offset) => offset > 0 && offset < BIG), `the big upload had stored part of its bytes when the browser went offline: ${offsets.join(', ')}`);
    assert.ok(requests.slice(beforeResume).includes('HEAD'), `Uppy asked for the offset (HEAD) to resume: ${requests.slice(beforeResume).join(' ')}`);
    const results = (await page.evaluate(() => (globalThis as unknown as { results: unknown }).results)) as { name: string; key: string | null; uploadURL: string }[];
    assert.equal(results.length, 3);
    for (const { name, key, uploadURL } of results) {
      assert.match(key ?? '', /^media\/\d{4}-\d{2}-\d{2}\/[0-9a-f-]{36}\.(jpg|txt|bin)$/, `${name}: Stowage-Object-Key read through CORS`);
      assert.ok(uploadURL.startsWith(`${base}/api/tus/`), uploadURL);
      const original = await readFile(join(files, name));
      const info = await storage.stat(key as string);
      assert.deepEqual([info.size, info.sha256, info.metadata['original-name']], [original.length, createHash('sha256').update(original).digest('hex'), name]);
    }
    assert.equal((await storage.stat(results.find((r) => r.name === 'holiday.jpg')?.key as string)).contentType, 'image/jpeg');
    assert.deepEqual(await storage.sessions.list(), [], 'no session left behind');
    assert.deepEqual(errors, []);
    await context.close();
  });
});
