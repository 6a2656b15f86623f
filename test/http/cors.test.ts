/**
 * CORS over real HTTP, with the Origin and preflight headers a browser sends (the browser
 * itself is in browser.test.ts): listed origins get the API and the signed `/files/`
 * links with preflights for PUT and POST (Content-Type and custom headers), exposed
 * ETag, Content-Range and Location, and `Vary: Origin`; `*` opens only reads that need
 * no credentials; other origins get nothing; npm start reads STOWAGE_CORS_ORIGINS.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Authenticator } from '../../src/index.js';
import { runServerWithin, sendRequest, servicesClosedAfterAll } from './helpers.js';

const APP = 'http://app.example.test:3000';
const OTHER = 'https://evil.example.test';

const start = servicesClosedAfterAll();


function preflight(base: string, path: string, origin: string, method: string, headers = 'content-type') {
  return sendRequest(base, { method: 'OPTIONS', path, headers: { origin, 'access-control-request-method': method, 'access-control-request-headers': headers } });
}

const pathOf = (url: string) => url.slice(new URL(url).origin.length);

describe('http: CORS', () => {
  it('sends no CORS headers unless origins are configured', async () => {
    const { base } = await start();
    const res = await sendRequest(base, { path: '/health', headers: { origin: APP } });
    assert.equal(res.headers['access-control-allow-origin'], undefined);
  });

  it('lets a listed origin preflight and use signed PUT and POST links and the API, exposing the headers it needs', async () => {
    const { base, storage } = await start({ corsOrigins: [APP] });
    const put = await storage.signedUrl('cors/a.txt', { method: 'PUT', contentType: 'text/plain' });
    const post = await storage.presignPost('cors/b.txt', { contentType: 'text/plain' });
    for (const [path, method] of [[pathOf(put.url), 'PUT'], [pathOf(post.url), 'POST'], ['/api/presign', 'POST'], ['/api/objects/cors/a.txt', 'DELETE']] as const) {
      const res = await preflight(base, path, APP, method, 'content-type,x-upload-note,authorization');
      assert.equal(res.status, 204, `${method} ${path}`);
      assert.equal(res.headers['access-control-allow-origin'], APP);
      assert.match(String(res.headers['access-control-allow-methods']), new RegExp(`\\b${method}\\b`));
      assert.match(String(res.headers['access-control-allow-headers']), /content-type,x-upload-note,authorization/);
      assert.match(String(res.headers.vary), /Origin/);
      assert.ok(Number(res.headers['access-control-max-age']) > 0);
    }
    const stored = await sendRequest(base, { method: 'PUT', path: pathOf(put.url), headers: { origin: APP, 'content-type': 'text/plain', 'x-upload-note': 'hi' }, body: '0123456789' });
    assert.equal(stored.status, 201);
    assert.equal(stored.headers['access-control-allow-origin'], APP);
    const range = await sendRequest(base, { path: '/api/objects/cors/a.txt', headers: { origin: APP, range: 'bytes=2-4' } });
    assert.equal(range.status, 206);
    assert.equal(range.headers['access-control-allow-origin'], APP);
    const exposed = String(range.headers['access-control-expose-headers']).split(/,\s*/);
    for (const header of ['ETag', 'Content-Range', 'Location']) assert.ok(exposed.includes(header), `${header} in ${exposed.join(', ')}`);
    assert.match(String(range.headers.vary), /Origin/);
  });

  it('lets a listed origin upload with tus: PATCH preflights, and the tus headers and Stowage-Object-Key exposed', async () => {
    const { base } = await start({ corsOrigins: [APP] });
    const tusHeaders = 'tus-resumable,upload-length,upload-offset,upload-metadata,upload-checksum,content-type';
    for (const [path, method] of [['/api/tus/', 'POST'], [`/api/tus/${'a'.repeat(32)}`, 'PATCH'], [`/api/tus/${'a'.repeat(32)}`, 'HEAD'], [`/api/tus/${'a'.repeat(32)}`, 'DELETE']] as const) {
      const res = await preflight(base, path, APP, method, tusHeaders);
      assert.equal(res.status, 204, `${method} ${path}`);
      assert.match(String(res.headers['access-control-allow-methods']), new RegExp(`\\b${method}\\b`));
      assert.match(String(res.headers['access-control-allow-headers']), new RegExp(tusHeaders));
    }
    const created = await sendRequest(base, { method: 'POST', path: '/api/tus/', headers: { origin: APP, 'tus-resumable': '1.0.0', 'upload-length': '5' } });
    assert.equal(created.status, 201);
    const location = String(created.headers.location);
    const done = await sendRequest(base, { method: 'PATCH', path: location, headers: { origin: APP, 'tus-resumable': '1.0.0', 'upload-offset': '0', 'content-type': 'application/offset+octet-stream' }, body: 'hello' });
    assert.equal(done.status, 204);
    assert.equal(done.headers['access-control-allow-origin'], APP);
    assert.match(String(done.headers['stowage-object-key']), /^uploads\//);
    const exposed = String(done.headers['access-control-expose-headers']).split(/,\s*/);
    for (const header of ['Stowage-Object-Key', 'Upload-Offset', 'Upload-Length', 'Upload-Expires', 'Tus-Resumable', 'Location']) assert.ok(exposed.includes(header), `${header} in ${exposed.join(', ')}`);
  });

  it('gives other origins nothing, and still says Vary: Origin', async () => {
    const { base, storage } = await start({ corsOrigins: [APP] });
    const put = await storage.signedUrl('cors/c.txt', { method: 'PUT' });
    const res = await preflight(base, pathOf(put.url), OTHER, 'PUT');
    assert.equal(res.headers['access-control-allow-origin'], undefined);
    const get = await sendRequest(base, { path: '/health', headers: { origin: OTHER } });
    assert.equal(get.headers['access-control-allow-origin'], undefined);
    assert.match(String(get.headers.vary), /Origin/);
  });

  it('with *, opens only reads without credentials: signed GET links, and public objects when API keys are on', async () => {
    const open = await start({ corsOrigins: ['*'] });
    await open.storage.put('pub/a.txt', 'hello');
    const link = await open.storage.signedUrl('pub/a.txt', { method: 'GET' });
    const signed = await sendRequest(open.base, { path: pathOf(link.url), headers: { origin: OTHER } });
    assert.equal(signed.status, 200);
    assert.equal(signed.headers['access-control-allow-origin'], '*');
    // Without API keys every /api/ read is anonymous: * must not open the store to every web page.
    const api = await sendRequest(open.base, { path: '/api/objects/pub/a.txt', headers: { origin: OTHER } });
    assert.equal(api.headers['access-control-allow-origin'], undefined);
    const put = await open.storage.signedUrl('pub/b.txt', { method: 'PUT' });
    assert.equal((await preflight(open.base, pathOf(put.url), OTHER, 'PUT')).headers['access-control-allow-origin'], undefined, 'no writes for *');

    const keyed = await start({ corsOrigins: ['*', APP], auth: new Authenticator({ keys: [{ key: 'cors-test-key-0123456789abcdef', identity: 'u', prefixes: [''], permissions: ['read', 'write'] }], publicRead: ['pub/'] }) });
    await keyed.storage.put('pub/a.txt', 'hello');
    const pub = await sendRequest(keyed.base, { path: '/api/objects/pub/a.txt', headers: { origin: OTHER } });
    assert.deepEqual([pub.status, pub.headers['access-control-allow-origin']], [200, '*']);
    const authorized = await preflight(keyed.base, '/api/objects/pub/a.txt', OTHER, 'GET', 'authorization');
    assert.doesNotMatch(String(authorized.headers['access-control-allow-headers']), /authorization/i, 'no credentials for *');
    // A listed origin next to * keeps the whole API.
    const listed = await preflight(keyed.base, '/api/objects/pub/c.txt', APP, 'PUT', 'authorization,content-type');
    assert.equal(listed.headers['access-control-allow-origin'], APP);
  });

  it('npm start reads STOWAGE_CORS_ORIGINS and refuses a value that is not an origin', async () => {
    const ok = await runServerWithin({ PORT: '0', STORAGE_BACKEND: 'memory', STOWAGE_CORS_ORIGINS: `${APP}, http://localhost:5173` }, /Stowage listening on (http:\/\/127\.0\.0\.1:\d+)/);
    try {
      const base = /http:\/\/127\.0\.0\.1:\d+/.exec(ok.output)?.[0] as string;
      const res = await preflight(base, '/api/presign', 'http://localhost:5173', 'POST');
      assert.equal(res.headers['access-control-allow-origin'], 'http://localhost:5173');
    } finally {
      ok.child.kill('SIGTERM');
    }
    for (const value of ['app.example.test', 'https://app.example.test/', 'https://app.example.test/path']) {
      const bad = await runServerWithin({ PORT: '0', STORAGE_BACKEND: 'memory', STOWAGE_CORS_ORIGINS: value }, /$^/);
      assert.equal(bad.code, 1, value);
      assert.match(bad.output, /STOWAGE_CORS_ORIGINS: .* is not an origin such as https:\/\/app\.example\.com/);
    }
  });
});
