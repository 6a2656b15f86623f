/**
 * Object responses are inert in a browser (stored XSS), over real HTTP on the fs
 * backend and in a user's own app with the routes mounted as a plugin: every object
 * response carries a sandboxing Content-Security-Policy and nosniff, types that run as a
 * page are served as attachments (by API, signed link, download and HEAD), and a signed
 * link cannot turn an object into such a type. The browser itself is in browser.test.ts.
 */
import assert from 'node:assert/strict';
import { rm } from 'node:fs/promises';
import { after, before, describe, it } from 'node:test';
import Fastify, { type FastifyInstance } from 'fastify';
import { createStorage, isStorageError, stowageRoutes, type Storage } from '../../src/index.js';
import { isActiveContentType } from '../../src/core/active-types.js';
import { png, startFsService, TEST_SECRET } from './helpers.js';

const HTML = '<!DOCTYPE html><script>document.title = "pwned"</script>';
const SVG = '<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>';

let app: FastifyInstance;
let base: string;
let root: string;
let storage: Storage;

before(async () => {
  ({ app, base, root, storage } = await startFsService());
});
after(async () => {
  await app.close();
  await rm(root, { recursive: true, force: true });
});

/** Asserts a response is inert: the sandboxing policy, nosniff, and an attachment when `attachment`. */
function assertInert(res: Response, attachment: boolean, what: string): void {
  const csp = res.headers.get('content-security-policy') ?? '';
  assert.match(csp, /(^|;)\s*sandbox\s*(;|$)/, `${what}: CSP ${csp}`);
  assert.match(csp, /default-src 'none'/, `${what}: CSP ${csp}`);
  assert.equal(res.headers.get('x-content-type-options'), 'nosniff', what);
  const disposition = res.headers.get('content-disposition') ?? '';
  assert.equal(disposition.startsWith('attachment'), attachment, `${what}: Content-Disposition ${JSON.stringify(disposition)}`);
}

async function put(key: string, body: string | Buffer, contentType?: string): Promise<void> {
  // Bytes, since fetch would send a string as text/plain.
  const res = await fetch(`${base}/api/objects/${key}`, { method: 'PUT', body: Buffer.from(body), headers: contentType ? { 'content-type': contentType } : {} });
  assert.equal(res.status, 201);
}

async function presign(body: Record<string, unknown>): Promise<Response> {
  return fetch(`${base}/api/presign`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
}

describe('http: inert object responses', () => {
  it('serves HTML, SVG and XHTML uploads as attachments, whatever the key says', async () => {
    const cases: [string, string, string | undefined][] = [
      ['x/evil.jpg', HTML, 'text/html'],
      ['x/evil-charset.png', HTML, 'Text/HTML; charset=utf-8'],
      ['x/evil.svg', SVG, 'image/svg+xml'],
      ['x/page.html', HTML, undefined], // typed from its extension
      ['x/page.xhtml', HTML, 'application/xhtml+xml'],
      ['x/feed.xml', '<?xml version="1.0"?><a/>', 'text/xml'],
      ['x/app.js', 'alert(1)', 'text/javascript'],
    ];
    for (const [key, body, type] of cases) {
      await put(key, body, type);
      const get = await fetch(`${base}/api/objects/${key}`);
      assert.equal(get.status, 200);
      assertInert(get, true, `GET ${key}`);
      assert.match(get.headers.get('content-disposition') ?? '', new RegExp(`filename="${key.split('/')[1]?.replace('.', '\\.')}"`));
      assert.equal(await get.text(), body, 'the bytes are unchanged');
      assertInert(await fetch(`${base}/api/objects/${key}`, { method: 'HEAD' }), true, `HEAD ${key}`);
      const etag = get.headers.get('etag') ?? '';
      const notModified = await fetch(`${base}/api/objects/${key}`, { headers: { 'if-none-match': etag } });
      assert.equal(notModified.status, 304);
      assertInert(notModified, true, `304 ${key}`);
    }
  });

  it('keeps images inline (still sandboxed), and overrides a stored inline disposition of an active type', async () => {
    await put('x/photo.png', png(100), 'image/png');
    const image = await fetch(`${base}/api/objects/x/photo.png`);
    assert.equal(image.headers.get('content-type'), 'image/png');
    assertInert(image, false, 'PNG');
    await storage.put('x/inline.html', HTML, { contentType: 'text/html', contentDisposition: 'inline' });
    assertInert(await fetch(`${base}/api/objects/x/inline.html`), true, 'stored inline HTML');
    const named = await fetch(`${base}/api/objects/x/photo.png?download=${encodeURIComponent('mine.png')}`);
    assertInert(named, true, 'download');
    assert.match(named.headers.get('content-disposition') ?? '', /filename="mine\.png"/);
  });

  it('serves signed /files/ links and redirects inert too', async () => {
    await put('x/linked.html', HTML, 'text/html');
    const link = (await (await presign({ key: 'x/linked.html', method: 'GET' })).json()) as { url: string };
    const res = await fetch(link.url);
    assert.equal(res.status, 200);
    assertInert(res, true, 'signed GET');
    assertInert(await fetch(link.url, { method: 'HEAD' }), true, 'signed HEAD');
    const redirected = await fetch(`${base}/api/objects/x/linked.html?redirect=1`);
    assert.equal(redirected.status, 200);
    assertInert(redirected, true, 'redirect to a signed link');
  });

  it('refuses a presigned GET that would serve a file as an active type, naming responseContentType', async () => {
    await put('x/notes.txt', 'hello', 'text/plain');
    for (const type of ['text/html', 'TEXT/HTML; charset=utf-8', 'image/svg+xml', 'application/xhtml+xml', 'application/javascript', 'text/xml', 'application/rss+xml', 'multipart/x-mixed-replace; boundary=x']) {
      const res = await presign({ key: 'x/notes.txt', method: 'GET', responseContentType: type });
      assert.equal(res.status, 400, type);
      const body = (await res.json()) as { error: { code: string; message: string } };
      assert.equal(body.error.code, 'E_INVALID_ARGUMENT');
      assert.match(body.error.message, /responseContentType/, 'the client is told which option');
      await assert.rejects(storage.signedUrl('x/notes.txt', { method: 'GET', responseContentType: type }), (err) => isStorageError(err, 'E_INVALID_ARGUMENT') && /responseContentType/.test(err.message));
    }
    const memory = createStorage({ driver: 'memory', baseUrl: 'http://127.0.0.1:1', signingSecret: TEST_SECRET });
    await assert.rejects(memory.signedUrl('k', { method: 'GET', responseContentType: 'text/html' }), (err) => isStorageError(err, 'E_INVALID_ARGUMENT'));
    // A passive override still works: the object served as text.
    const link = (await (await presign({ key: 'x/notes.txt', method: 'GET', responseContentType: 'application/octet-stream' })).json()) as { url: string };
    const res = await fetch(link.url);
    assert.equal(res.headers.get('content-type'), 'application/octet-stream');
    assertInert(res, false, 'passive override');
  });

  it('holds in a user app that mounts the routes as a plugin', async () => {
    const userStorage = createStorage({ driver: 'memory' });
    const userApp = Fastify();
    userApp.get('/', async () => ({ mine: true }));
    await userApp.register(stowageRoutes, { storage: userStorage });
    const address = await userApp.listen({ host: '127.0.0.1', port: 0 });
    try {
      await userStorage.put('u/evil.jpg', HTML, { contentType: 'text/html' });
      await userStorage.put('u/ok.png', png(10), { contentType: 'image/png' });
      assertInert(await fetch(`${address}/api/objects/u/evil.jpg`), true, 'plugin HTML');
      assertInert(await fetch(`${address}/api/objects/u/ok.png`), false, 'plugin PNG');
      assert.equal((await fetch(`${address}/`)).headers.get('content-security-policy'), null, "the user's own routes are left alone");
    } finally {
      await userApp.close();
    }
  });

  it('counts as active every type a browser may run as a page, and only those', () => {
    const active = ['text/html', 'application/xhtml+xml', 'image/svg+xml', 'text/xml', 'application/xml', 'application/xslt+xml', 'text/xsl', 'application/mathml+xml', 'text/javascript', 'application/javascript', 'application/x-javascript', 'application/ecmascript', 'text/jscript', 'application/x-shockwave-flash', 'multipart/x-mixed-replace', 'message/rfc822', 'text/html ; charset=utf-8', 'not a type', ''];
    const passive = ['image/png', 'image/jpeg', 'image/webp', 'image/gif', 'video/mp4', 'audio/mpeg', 'text/plain', 'text/csv', 'application/json', 'application/pdf', 'application/octet-stream', 'application/zip', 'text/css'];
    for (const t of active) assert.equal(isActiveContentType(t), true, t);
    for (const t of passive) assert.equal(isActiveContentType(t), false, t);
  });
});
