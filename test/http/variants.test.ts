/**
 * Image variants over HTTP on the fs backend: `?variant=` on the object routes and on
 * signed links, the format by Accept with Vary, ETag and 304, immutable only when the URL
 * names the original's digest, 4xx for what cannot be rendered (a decompression bomb
 * among them, after which the service still answers), and 503 with Retry-After when the
 * render queue is full.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import sharp from 'sharp';
import type { FastifyInstance } from 'fastify';
import { Authenticator, buildApp, createStorage, type ImagesOptions, type Storage } from '../../src/index.js';
import { photo } from '../images/store-cases.js';

const SECRET = 'variants-http-signing-secret-0123';
const READER = 'variants-reader-key-0123456789ab';

/** A PNG of only a header declaring `side` x `side` pixels: a decompression bomb's shape. */
async function bomb(side: number): Promise<Buffer> {
  const small = await sharp({ create: { width: 1, height: 1, channels: 3, background: '#000' } }).png().toBuffer();
  const copy = Buffer.from(small);
  copy.writeUInt32BE(side, 16);
  copy.writeUInt32BE(side, 20);
  return copy;
}

describe('http: image variants', () => {
  let dir: string;
  let app: FastifyInstance;
  let storage: Storage;
  let base: string;

  async function start(images?: ImagesOptions, auth?: Authenticator): Promise<void> {
    await app?.close();
    storage = createStorage({ driver: 'fs', root: dir, images, signingSecret: SECRET, baseUrl: 'http://placeholder.invalid' });
    app = await buildApp({ storage, logger: false, auth });
    base = await app.listen({ host: '127.0.0.1', port: 0 });
    // Links must name the port just picked.
    await app.close();
    storage = createStorage({ driver: 'fs', root: dir, images, signingSecret: SECRET, baseUrl: base });
    app = await buildApp({ storage, logger: false, auth });
    await app.listen({ host: '127.0.0.1', port: Number(new URL(base).port) });
  }

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'stowage-http-variants-'));
    await start();
    await storage.put('photos/cat.jpg', await photo(800, 600), { contentType: 'image/jpeg' });
    await storage.put('docs/report.pdf', Buffer.from('%PDF-1.7\n1 0 obj\n<<>>\nendobj\ntrailer\n<<>>\n%%EOF\n'), { contentType: 'application/pdf' });
    await storage.put('photos/bomb.png', await bomb(60_000), { contentType: 'image/png' });
  });
  after(async () => {
    await app.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('serves the variant Accept picks, with Vary, its ETag, its source, and 304', async () => {
    const webp = await fetch(`${base}/api/objects/photos/cat.jpg?variant=thumb`, { headers: { accept: 'image/webp,*/*' } });
    assert.equal(webp.status, 200);
    assert.equal(webp.headers.get('content-type'), 'image/webp');
    assert.equal(webp.headers.get('vary'), 'Accept');
    assert.equal(webp.headers.get('x-content-type-options'), 'nosniff');
    const sha = (await storage.stat('photos/cat.jpg')).sha256;
    assert.equal(webp.headers.get('stowage-variant-source'), sha);
    assert.equal(webp.headers.get('cache-control'), 'public, no-cache', 'revalidated: the original may be replaced');
    const body = Buffer.from(await webp.arrayBuffer());
    assert.deepEqual(await sharp(body).metadata().then((m) => [m.format, m.width, m.height]), ['webp', 200, 200]);
    const etag = webp.headers.get('etag') ?? '';
    assert.match(etag, /^"[0-9a-f]{32}"$/);

    const again = await fetch(`${base}/api/objects/photos/cat.jpg?variant=thumb`, { headers: { accept: 'image/webp', 'if-none-match': etag } });
    assert.equal(again.status, 304);
    const jpeg = await fetch(`${base}/api/objects/photos/cat.jpg?variant=thumb`);
    assert.equal(jpeg.headers.get('content-type'), 'image/jpeg');
    assert.notEqual(jpeg.headers.get('etag'), etag);

    const head = await fetch(`${base}/api/objects/photos/cat.jpg?variant=thumb`, { method: 'HEAD', headers: { accept: 'image/avif' } });
    assert.equal(head.status, 200);
    assert.equal(head.headers.get('content-type'), 'image/avif');
    assert.ok(Number(head.headers.get('content-length')) > 0);

    const immutable = await fetch(`${base}/api/objects/photos/cat.jpg?variant=thumb&v=${sha}`);
    assert.equal(immutable.headers.get('cache-control'), 'public, max-age=31536000, immutable');
    const stale = await fetch(`${base}/api/objects/photos/cat.jpg?variant=thumb&v=${'0'.repeat(64)}`);
    assert.equal(stale.headers.get('cache-control'), 'public, no-cache', 'a digest that is not the current one is never immutable');
    const original = await fetch(`${base}/api/objects/photos/cat.jpg?v=3`);
    assert.equal(original.headers.get('content-type'), 'image/jpeg', '?v alone is still a cache buster for the object');
    assert.equal(Number(original.headers.get('content-length')), (await storage.stat('photos/cat.jpg')).size);
  });

  it('answers 4xx for what has no variant, and stays responsive after a decompression bomb', async () => {
    const cases: [string, number, string][] = [
      ['/api/objects/docs/report.pdf?variant=thumb', 415, 'E_UNSUPPORTED_MEDIA_TYPE'],
      ['/api/objects/photos/cat.jpg?variant=huge', 400, 'E_INVALID_ARGUMENT'],
      ['/api/objects/photos/none.jpg?variant=thumb', 404, 'E_NOT_FOUND'],
      ['/api/objects/photos/cat.jpg?variant=thumb&download=cat.jpg', 400, 'E_INVALID_ARGUMENT'],
      ['/api/objects/photos/bomb.png?variant=thumb', 413, 'E_TOO_LARGE'],
    ];
    for (const [path, status, code] of cases) {
      const res = await fetch(`${base}${path}`);
      const json = (await res.json()) as { error: { code: string; message: string } };
      assert.equal(res.status, status, `${path}: ${JSON.stringify(json)}`);
      assert.equal(json.error.code, code);
    }
    const bombed = (await (await fetch(`${base}/api/objects/photos/bomb.png?variant=thumb`)).json()) as { error: { message: string } };
    assert.match(bombed.error.message, /declares 60000x60000 pixels \(3600\.0 megapixels\), over the limit of 50\.0 megapixels/);
    const unknown = (await (await fetch(`${base}/api/objects/photos/cat.jpg?variant=huge`)).json()) as { error: { message: string } };
    assert.match(unknown.error.message, /no image variant "huge"; the configured ones are thumb/);
    assert.equal((await fetch(`${base}/api/objects/photos/cat.jpg?variant=thumb`)).status, 200, 'still serving');
  });

  it('serves variants through signed links, which name the variant in their signature', async () => {
    const signed = await storage.signedUrl('photos/cat.jpg', { method: 'GET', variant: 'thumb', expiresIn: 60 });
    assert.match(signed.url, /X-Stowage-Variant=thumb/);
    const res = await fetch(signed.url, { headers: { accept: 'image/webp' } });
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('content-type'), 'image/webp');
    const forged = await fetch(signed.url.replace('X-Stowage-Variant=thumb', 'X-Stowage-Variant=medium'));
    assert.equal(forged.status, 403);
    const stripped = await fetch(signed.url.replace(/&?X-Stowage-Variant=thumb/, ''));
    assert.equal(stripped.status, 403, 'a variant link is not a link to the original');
    const presigned = await fetch(`${base}/api/presign`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ key: 'photos/cat.jpg', method: 'GET', variant: 'thumb' }) });
    const { url } = (await presigned.json()) as { url: string };
    assert.equal((await fetch(url)).headers.get('content-type'), 'image/jpeg');
    const redirect = await fetch(`${base}/api/objects/photos/cat.jpg?variant=thumb&redirect=1`, { redirect: 'manual' });
    assert.equal(redirect.status, 302);
    assert.match(redirect.headers.get('location') ?? '', /X-Stowage-Variant=thumb/);
    await assert.rejects(storage.signedUrl('photos/cat.jpg', { method: 'GET', variant: 'nope' }), /no image variant "nope"/);
    await assert.rejects(storage.signedUrl('photos/cat.jpg', { method: 'PUT', variant: 'thumb' }), /only apply to GET/);
  });

  it('keeps variants of private objects out of shared caches', async () => {
    await start(undefined, new Authenticator({ keys: [{ key: READER, identity: 'reader', prefixes: ['photos/'], permissions: ['read'] }], publicRead: ['public/'] }));
    await storage.put('public/logo.jpg', await photo(300, 300));
    const denied = await fetch(`${base}/api/objects/photos/cat.jpg?variant=thumb`);
    assert.equal(denied.status, 401);
    const own = await fetch(`${base}/api/objects/photos/cat.jpg?variant=thumb`, { headers: { authorization: `Bearer ${READER}` } });
    assert.equal(own.status, 200);
    assert.equal(own.headers.get('cache-control'), 'private, no-cache');
    const pub = await fetch(`${base}/api/objects/public/logo.jpg?variant=thumb`);
    assert.equal(pub.headers.get('cache-control'), 'public, no-cache');
  });

  it('answers 503 with Retry-After when the render queue is full', async () => {
    await start({ concurrency: 1, queue: 0 });
    const keys = Array.from({ length: 6 }, (_, i) => `busy/${i}.jpg`);
    for (const key of keys) await storage.put(key, await photo(1600, 1200));
    const answers = await Promise.all(keys.map((key) => fetch(`${base}/api/objects/${key}?variant=thumb`, { headers: { accept: 'image/avif' } })));
    const statuses = answers.map((r) => r.status);
    assert.ok(statuses.includes(200), statuses.join());
    const busy = answers.filter((r) => r.status === 503);
    assert.ok(busy.length > 0, `some were refused: ${statuses.join()}`);
    for (const r of busy) {
      assert.ok(Number(r.headers.get('retry-after')) >= 1);
      assert.equal(((await r.json()) as { error: { code: string } }).error.code, 'E_UNAVAILABLE');
    }
    for (const r of answers) if (!r.bodyUsed) await r.body?.cancel();
  });
});
