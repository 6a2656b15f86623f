/**
 * Image variants over HTTP on the S3 backend (real RGW): `?variant=` renders from the
 * original in the bucket, and a signed link with a variant is the service's own link
 * (RGW cannot render), covered by its signature, while a plain signed GET stays RGW's
 * native presigned link (a service link to the object itself is refused).
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import sharp from 'sharp';
import type { FastifyInstance } from 'fastify';
import { buildApp, createStorage, type Storage } from '../../../src/index.js';
import { createSignedUrl } from '../../../src/core/signing.js';
import { emptyStorage, s3Options, s3TestEnv, uniqueBucket } from '../../drivers/s3/env.js';
import { photo } from '../../images/store-cases.js';
import { freePort } from '../helpers.js';

const SECRET = 's3-variants-signing-secret-0123456';

describe('http: image variants on S3', () => {
  let storage: Storage;
  let app: FastifyInstance;
  let base: string;
  let original: Buffer;

  before(async () => {
    const port = await freePort();
    base = `http://127.0.0.1:${port}`;
    storage = createStorage({ driver: 's3', ...s3Options(uniqueBucket('http-variants')), signingSecret: SECRET, baseUrl: base });
    await storage.verify({ createBucket: true });
    app = await buildApp({ storage, logger: false });
    await app.listen({ host: '127.0.0.1', port });
    original = await photo(900, 600);
    await storage.put('photos/dog.jpg', original, { contentType: 'image/jpeg' });
  });
  after(async () => {
    await app?.close();
    if (storage) await emptyStorage(storage);
  });

  it('renders ?variant=thumb from the original in the bucket', async () => {
    const res = await fetch(`${base}/api/objects/photos/dog.jpg?variant=thumb`, { headers: { accept: 'image/avif,image/webp' } });
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('content-type'), 'image/avif');
    const meta = await sharp(Buffer.from(await res.arrayBuffer())).metadata();
    assert.deepEqual([meta.width, meta.height], [200, 200]);
    assert.equal(res.headers.get('stowage-variant-source'), (await storage.stat('photos/dog.jpg')).sha256);
  });

  it("signs a variant link on the service (covered by its signature), and a plain one on RGW", async () => {
    const signed = await storage.signedUrl('photos/dog.jpg', { method: 'GET', variant: 'thumb', expiresIn: 60 });
    assert.ok(signed.url.startsWith(`${base}/`), `the service's own link: ${signed.url}`);
    const res = await fetch(signed.url, { headers: { accept: 'image/webp' } });
    assert.deepEqual([res.status, res.headers.get('content-type')], [200, 'image/webp']);
    assert.equal((await sharp(Buffer.from(await res.arrayBuffer())).metadata()).width, 200);
    assert.equal((await fetch(signed.url.replace('X-Stowage-Variant=thumb', 'X-Stowage-Variant=medium'))).status, 403);
    assert.equal((await fetch(signed.url.replace(/&?X-Stowage-Variant=thumb/, ''))).status, 403, 'not a link to the original');

    const presigned = await fetch(`${base}/api/presign`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ key: 'photos/dog.jpg', method: 'GET', variant: 'thumb' }) });
    const { url } = (await presigned.json()) as { url: string };
    assert.ok(url.startsWith(`${base}/`));
    assert.equal((await fetch(url)).headers.get('content-type'), 'image/jpeg');

    const plain = await storage.signedUrl('photos/dog.jpg', { method: 'GET', expiresIn: 60 });
    assert.ok(plain.url.startsWith(s3TestEnv().endpoint), `RGW's presigned link: ${plain.url}`);
    assert.deepEqual(Buffer.from(await (await fetch(plain.url)).arrayBuffer()), original);
    // A service link to the object itself was never issued by this storage: refused, though its signature is good.
    const own = createSignedUrl('photos/dog.jpg', { method: 'GET', expiresIn: 60 }, { baseUrl: base, secret: SECRET });
    const refused = await fetch(own.url);
    assert.equal(refused.status, 403);
    assert.match(((await refused.json()) as { error: { message: string } }).error.message, /links to image variants only/);
  });
});
