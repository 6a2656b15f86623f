/**
 * The service from a real browser: Debian's Chromium, driven by playwright-core. A page
 * on one loopback origin uploads through a presigned PUT (with a custom header) and a
 * presigned POST form to the service on another port, reads the files back with their
 * exposed headers, and shows one in an <img>. Uploaded HTML and SVG pages opened from the
 * service (by API and by signed link) never run script on its origin. Without Chromium
 * the tests fail and say how to install it.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { FastifyInstance } from 'fastify';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import type { Storage } from '../../src/index.js';
import { solidPng, startFsService } from './helpers.js';
import { CHROMIUM, CHROMIUM_ARGS, requireChromium } from '../chromium.js';

// The frontend's own code, as the page serves it (plain JS: the test's compiler must not touch it).
const FRONTEND = `
const log = (line) => (document.getElementById('log').textContent += line + '\\n');
async function presign(api, body) {
  const res = await fetch(api + '/api/presign', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  return res.json();
}
async function roundTrip(api, png) {
  const bytes = Uint8Array.from(atob(png), (c) => c.charCodeAt(0));
  const put = await presign(api, { key: 'browser/put.png', method: 'PUT', contentType: 'image/png' });
  const stored = await fetch(put.url, { method: 'PUT', headers: { ...put.headers, 'x-client-note': 'from the page' }, body: bytes });
  log('presigned PUT: ' + stored.status);

  const post = await presign(api, { key: 'browser/form.png', method: 'POST', contentType: 'image/png', maxSize: 100000 });
  const form = new FormData();
  for (const [name, value] of Object.entries(post.fields)) form.append(name, value);
  form.append('file', new Blob([bytes], { type: 'image/png' }), 'form.png');
  const posted = await fetch(post.url, { method: 'POST', body: form });
  const postedInfo = await posted.json();
  log('presigned POST form: ' + posted.status + ', ' + postedInfo.size + ' bytes');

  const whole = await fetch(api + '/api/objects/browser/put.png');
  const back = new Uint8Array(await whole.arrayBuffer());
  const same = back.length === bytes.length && back.every((b, i) => b === bytes[i]);
  log('download: ' + whole.status + ', ' + back.length + ' bytes, same: ' + same + ', ETag ' + whole.headers.get('etag'));
  const link = await presign(api, { key: 'browser/form.png', method: 'GET' });
  const range = await fetch(link.url, { headers: { range: 'bytes=0-7' } });
  log('signed GET range: ' + range.status + ', Content-Range ' + range.headers.get('content-range'));

  const img = document.getElementById('img');
  await new Promise((resolve, reject) => {
    img.onload = resolve;
    img.onerror = () => reject(new Error('the image did not load'));
    img.src = api + '/api/objects/browser/form.png';
  });
  log('<img> from the service: ' + img.naturalWidth + 'x' + img.naturalHeight);
  return { put: stored.status, post: posted.status, same, etag: whole.headers.get('etag'), contentRange: range.headers.get('content-range'), width: img.naturalWidth };
}`;
const PAGE = `<!DOCTYPE html><html><head><title>frontend</title><script>${FRONTEND}</script></head><body><h1>Frontend on another origin</h1><pre id="log"></pre><img id="img" width="120" height="80"></body></html>`;

let pageServer: Server;
let pageOrigin: string;
let service: { app: FastifyInstance; base: string; storage: Storage; root: string };
let context: BrowserContext;
let page: Page;
let profile: string;

before(async () => {
  requireChromium();
  pageServer = createServer((_req, res) => res.writeHead(200, { 'content-type': 'text/html' }).end(PAGE));
  await new Promise<void>((resolve) => pageServer.listen(0, '127.0.0.1', resolve));
  pageOrigin = `http://127.0.0.1:${(pageServer.address() as AddressInfo).port}`;
  service = await startFsService({ corsOrigins: [pageOrigin] });
  profile = await mkdtemp(join(tmpdir(), 'stowage-chromium-'));
  context = await chromium.launchPersistentContext(profile, { executablePath: CHROMIUM, args: CHROMIUM_ARGS, viewport: { width: 800, height: 500 } });
  page = await context.newPage();
});
after(async () => {
  await context?.close();
  await service?.app.close();
  pageServer?.close();
  await Promise.all([profile, service?.root].filter((d) => d !== undefined).map((d) => rm(d, { recursive: true, force: true })));
});

describe('http in a browser', () => {
  it('uploads from another origin through a presigned PUT and a presigned POST form, and downloads the files back', async () => {
    await page.goto(pageOrigin);
    const image = solidPng(120, 80, [20, 160, 90]);
    const result = await page.evaluate(`roundTrip(${JSON.stringify(service.base)}, ${JSON.stringify(image.toString('base64'))})`);
    const screenshot = join(tmpdir(), 'stowage-browser-round-trip.png');
    await page.screenshot({ path: screenshot });
    console.log(`screenshot: ${screenshot}`);
    assert.deepEqual(result, { put: 201, post: 201, same: true, etag: `"${(await service.storage.stat('browser/put.png')).etag}"`, contentRange: `bytes 0-7/${image.length}`, width: 120 });
    assert.deepEqual(await service.storage.get('browser/form.png'), image);
  });

  it('never runs the script of an uploaded HTML or SVG page on the service origin', async () => {
    // If it ran, the script would store a file through the API, on the service's own origin.
    const attack = (name: string) =>
      `var x = new XMLHttpRequest(); x.open('PUT', '/api/objects/pwned/${name}', false); x.send(String(document.domain)); document.title = 'pwned';`;
    await service.storage.put('evil/page.html', `<!DOCTYPE html><html><body><script>${attack('html')}</script></body></html>`, { contentType: 'text/html' });
    await service.storage.put('evil/photo.jpg', `<!DOCTYPE html><html><body><script>${attack('jpg')}</script></body></html>`, { contentType: 'text/html' });
    await service.storage.put('evil/image.svg', `<svg xmlns="http://www.w3.org/2000/svg"><script>${attack('svg')}</script></svg>`, { contentType: 'image/svg+xml' });
    const signed = await service.storage.signedUrl('evil/page.html', { method: 'GET' });
    for (const url of [`${service.base}/api/objects/evil/page.html`, `${service.base}/api/objects/evil/photo.jpg`, `${service.base}/api/objects/evil/image.svg`, signed.url]) {
      // An attachment starts a download instead of a page, which playwright reports as a failed navigation.
      const outcome = await page.goto(url).then(
        async () => `opened, title ${JSON.stringify(await page.title())}`,
        (err: Error) => `not opened: ${err.message.split('\n')[0] ?? ''}`,
      );
      assert.notEqual(await page.title().catch(() => ''), 'pwned', `${url}: ${outcome}`);
    }
    assert.deepEqual((await service.storage.list({ prefix: 'pwned/' })).objects, [], 'no script wrote through the API');
  });
});
