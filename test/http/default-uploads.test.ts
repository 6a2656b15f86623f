/**
 * `POST /api/uploads` out of the box, over real HTTP: with no policies configured the
 * `default` template takes any type that cannot run as a page (detected from the bytes,
 * else the claimed type when the bytes do not contradict it, else octet-stream) under
 * `uploads/{date}/{uuid}.{ext}`, `?template=` may be left out when one template exists,
 * refusals list the configured templates to the client, and `npm start` says which
 * templates it serves.
 */
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import type { FastifyInstance } from 'fastify';
import { buildApp, createStorage, type Storage } from '../../src/index.js';
import { png, runServerWithin } from './helpers.js';

const apps: FastifyInstance[] = [];
after(async () => Promise.all(apps.map((a) => a.close())));

async function start(opts: Partial<Parameters<typeof buildApp>[0]> = {}): Promise<{ base: string; storage: Storage }> {
  const storage = createStorage({ driver: 'memory' });
  const app = await buildApp({ storage, logger: false, ...opts });
  apps.push(app);
  return { base: await app.listen({ host: '127.0.0.1', port: 0 }), storage };
}

type Uploaded = { status: number; body: { files?: { key: string; contentType: string; size: number }[]; error?: { code: string; message: string } } };

async function upload(base: string, files: [Buffer | string, string, string][], query = ''): Promise<Uploaded> {
  const form = new FormData();
  for (const [data, name, type] of files) form.append('file', new Blob([data], { type }), name);
  const res = await fetch(`${base}/api/uploads${query}`, { method: 'POST', body: form });
  return { status: res.status, body: (await res.json()) as never };
}

/** Bytes no format signature matches (random bytes could, once in a while). */
const NOTHING_KNOWN = Buffer.from('no format starts like this '.repeat(12));

const today = () => new Date().toISOString().slice(0, 10);

describe('http: default upload template', () => {
  it('stores any safe type under uploads/{date}/{uuid}.{ext}, typed by its bytes or an uncontradicted claim', async () => {
    const { base, storage } = await start();
    const res = await upload(base, [
      [png(200), 'photo.png', 'application/octet-stream'], // detected from the bytes
      ['name,count\na,1\n', 'table.csv', 'text/csv'], // file-type knows no CSV: the claim stands
      [NOTHING_KNOWN, 'fake.png', 'image/png'], // a PNG claim without a PNG's bytes: contradicted
      [NOTHING_KNOWN, 'blob', 'application/x-unknown-thing'],
    ]);
    assert.equal(res.status, 201, JSON.stringify(res.body));
    const [photo, table, fake, blob] = res.body.files ?? [];
    const key = (ext: string) => new RegExp(`^uploads/${today()}/[0-9a-f-]{36}\\.${ext}$`);
    assert.match(photo?.key ?? '', key('png'));
    assert.equal(photo?.contentType, 'image/png');
    assert.match(table?.key ?? '', key('csv'));
    assert.equal(table?.contentType, 'text/csv');
    assert.match(fake?.key ?? '', key('bin'));
    assert.equal(fake?.contentType, 'application/octet-stream');
    assert.match(blob?.key ?? '', key('bin'));
    assert.equal((await storage.stat(photo?.key)).metadata['original-name'], 'photo.png');
  });

  it('refuses the types that run as a page, by claim or by bytes, storing nothing', async () => {
    const { base, storage } = await start();
    for (const [data, name, type] of [
      ['<!DOCTYPE html><script>alert(1)</script>', 'page.html', 'text/html'],
      ['<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>', 'a.svg', 'image/svg+xml'],
      ['<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg"/>', 'a.txt', 'text/plain'], // the bytes say XML
      ['alert(1)', 'a.js', 'text/javascript'],
    ] as const) {
      const res = await upload(base, [[data, name, type]]);
      assert.equal(res.status, 415, `${name}: ${JSON.stringify(res.body)}`);
      assert.equal(res.body.error?.code, 'E_UNSUPPORTED_MEDIA_TYPE');
      assert.match(res.body.error?.message ?? '', /run as a page/);
    }
    assert.equal((await storage.usage()).objects, 0);
  });

  it('names the template in ?template= only when several exist, and lists them to the client when it is wrong', async () => {
    const { base } = await start({
      uploadPolicies: {
        avatars: { template: 'avatars/{uuid}.{ext}', maxSize: 10_000, allowedTypes: ['image/png'] },
        documents: { template: 'docs/{uuid}.{ext}', maxSize: 10_000, allowedTypes: '*' },
      },
    });
    const missing = await upload(base, [[png(10), 'a.png', 'image/png']]);
    assert.equal(missing.status, 400);
    assert.match(missing.body.error?.message ?? '', /choose an upload template with \?template=; configured: avatars, documents/);
    const unknown = await upload(base, [[png(10), 'a.png', 'image/png']], '?template=photos');
    assert.equal(unknown.status, 400);
    assert.match(unknown.body.error?.message ?? '', /unknown upload template "photos"; configured: avatars, documents/);
    const chosen = await upload(base, [['notes', 'a.txt', 'text/plain']], '?template=documents');
    assert.equal(chosen.status, 201);
    assert.match(chosen.body.files?.[0]?.key ?? '', /^docs\/[0-9a-f-]{36}\.txt$/);

    const single = await start({ uploadPolicies: { avatars: { template: 'avatars/{uuid}.{ext}', maxSize: 10_000, allowedTypes: ['image/png'] } } });
    assert.equal((await upload(single.base, [[png(10), 'a.png', 'image/png']])).status, 201, 'one template: no ?template= needed');
    const none = await start({ uploadPolicies: {} });
    assert.equal((await upload(none.base, [[png(10), 'a.png', 'image/png']])).status, 404, '{} turns the route off');
  });

  it('npm start accepts uploads with no configuration and names its templates at start-up', async () => {
    const { output, child } = await runServerWithin({ PORT: '0', STORAGE_BACKEND: 'memory' }, /upload templates of POST \/api\/uploads: .*/);
    try {
      assert.match(output, /upload templates of POST \/api\/uploads: default \(uploads\/\{date\}\/\{uuid\}\.\{ext\}\)/);
      const base = /http:\/\/127\.0\.0\.1:\d+/.exec(output)?.[0] as string;
      const res = await upload(base, [[png(50), 'me.png', 'image/png']]);
      assert.equal(res.status, 201, JSON.stringify(res.body));
      assert.match(res.body.files?.[0]?.key ?? '', /^uploads\/\d{4}-\d{2}-\d{2}\/[0-9a-f-]{36}\.png$/);
    } finally {
      child.kill('SIGTERM');
    }
  });
});
