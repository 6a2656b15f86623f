/**
 * `POST /api/uploads` over real HTTP: keys from the template and the caller's identity,
 * types checked by magic bytes (not the claimed type), size, count and file-name limits,
 * all-or-nothing requests, and malformed multipart bodies.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import type { FastifyInstance } from 'fastify';
import { Authenticator, buildApp, createStorage, type Storage } from '../../src/index.js';
import { png } from './helpers.js';

const PNG = png(2000);
const JPEG = Buffer.concat([Buffer.from([0xff, 0xd8, 0xff, 0xe0, 0, 16]), Buffer.from('JFIF\0'), randomBytes(2000)]);
const HTML = Buffer.from('<!DOCTYPE html><html><script>alert(1)</script></html>');
const EXE = Buffer.concat([Buffer.from('MZ'), Buffer.alloc(58), Buffer.from([0x80, 0, 0, 0]), Buffer.alloc(64), Buffer.from('PE\0\0'), randomBytes(500)]);
const KEY = 'uploader-key-0123456789abcdef';

let app: FastifyInstance;
let base: string;
let storage: Storage;

before(async () => {
  storage = createStorage({ driver: 'memory' });
  const policies = {
    user_photos: { template: 'user_photos/{userId}/{uuid}.{ext}', maxSize: 10_000, allowedTypes: ['image/png', 'image/jpeg'], maxFiles: 2, maxFileNameLength: 40 },
  };
  app = await buildApp({ storage, logger: false, uploadPolicies: policies, auth: new Authenticator({ keys: [{ key: KEY, identity: 'u42', prefixes: ['user_photos/{userId}/'], permissions: ['read', 'write'] }] }) });
  base = await app.listen({ host: '127.0.0.1', port: 0 });
});
after(async () => app?.close());

async function upload(files: [Buffer, string, string][], template = 'user_photos', key: string | null = KEY): Promise<{ status: number; body: { files?: { key: string; contentType: string; size: number; url: string; sha256: string }[]; error?: { code: string } } }> {
  const form = new FormData();
  for (const [data, name, type] of files) form.append('file', new Blob([data], { type }), name);
  // Refused bodies this short are read to the end by the server, so the client always
  // gets the answer, never a reset connection.
  const res = await fetch(`${base}/api/uploads?template=${template}`, { method: 'POST', body: form, headers: key ? { authorization: `Bearer ${key}` } : {} });
  return { status: res.status, body: (await res.json()) as never };
}

/** A refusal with `status` and, if given, the error `code`. */
function refusedWith(res: { status: number; body: { error?: { code: string } } }, status: number, code?: string): void {
  assert.equal(res.status, status);
  if (code) assert.equal(res.body.error?.code, code);
}

async function count(): Promise<number> {
  return (await storage.usage()).objects;
}

describe('http uploads', () => {
  it('stores files under keys from the template and identity, typed by their bytes', async () => {
    const res = await upload([[PNG, 'holiday.png', 'application/octet-stream'], [JPEG, 'me.jpg', 'image/png']]);
    assert.equal(res.status, 201, JSON.stringify(res.body));
    const [png, jpg] = res.body.files ?? [];
    assert.match(png?.key ?? '', /^user_photos\/u42\/[0-9a-f-]{36}\.png$/);
    assert.equal(png?.contentType, 'image/png');
    assert.match(jpg?.key ?? '', /^user_photos\/u42\/[0-9a-f-]{36}\.jpg$/);
    assert.equal(jpg?.contentType, 'image/jpeg', 'the claimed type is not trusted');
    assert.deepEqual(await storage.get(png?.key ?? ''), PNG);
    assert.equal((await storage.stat(png?.key ?? '')).metadata['original-name'], 'holiday.png');
    assert.equal(png?.url, `/api/objects/${png?.key ?? ''}`);
  });

  for (const [label, data] of [['an HTML page', HTML], ['a Windows executable', EXE]] as const) {
    it(`refuses ${label} sent as image/jpeg with 415, storing nothing`, async () => {
      const before = await count();
      const res = await upload([[data, 'photo.jpg', 'image/jpeg']]);
      assert.equal(res.status, 415);
      assert.equal(res.body.error?.code, 'E_UNSUPPORTED_MEDIA_TYPE');
      assert.equal(await count(), before);
    });
  }

  it('refuses a file over the size limit with 413, storing nothing', async () => {
    const before = await count();
    const res = await upload([[png(20_000), 'big.png', 'image/png']]);
    refusedWith(res, 413);
    assert.equal(await count(), before);
  });

  it('is all or nothing: too many files, or one bad file, undo the rest', async () => {
    const before = await count();
    refusedWith(await upload([[PNG, 'a.png', 'image/png'], [PNG, 'b.png', 'image/png'], [PNG, 'c.png', 'image/png']]), 400, 'E_TOO_MANY_FILES');
    refusedWith(await upload([[PNG, 'ok.png', 'image/png'], [HTML, 'evil.png', 'image/png']]), 415, 'E_UNSUPPORTED_MEDIA_TYPE');
    assert.equal(await count(), before);
  });

  it('checks file names and the template name', async () => {
    assert.equal((await upload([[PNG, `${'x'.repeat(50)}.png`, 'image/png']])).body.error?.code, 'E_INVALID_FILE_NAME');
    assert.equal((await upload([[PNG, 'a\u0007b.png', 'image/png']])).status, 400);
    const unknown = await upload([[PNG, 'a.png', 'image/png']], 'nope');
    assert.equal(unknown.status, 400);
  });

  it('refuses compressed request bodies with 415', async () => {
    const res = await fetch(`${base}/api/uploads?template=user_photos`, {
      method: 'POST',
      headers: { authorization: `Bearer ${KEY}`, 'content-type': 'multipart/form-data; boundary=x', 'content-encoding': 'gzip' },
      body: 'x',
    });
    assert.equal(res.status, 415);
    assert.equal(((await res.json()) as { error: { code: string } }).error.code, 'E_UNSUPPORTED_MEDIA_TYPE');
  });

  it('needs an API key when auth is configured', async () => {
    assert.equal((await upload([[PNG, 'a.png', 'image/png']], 'user_photos', null)).status, 401);
  });

  it('answers malformed and truncated multipart bodies with 4xx and keeps serving', async () => {
    const garbage = await fetch(`${base}/api/uploads?template=user_photos`, {
      method: 'POST',
      headers: { authorization: `Bearer ${KEY}`, 'content-type': 'multipart/form-data; boundary=xyz' },
      body: '--xyz\r\nContent-Disposition: form-data; name="file"; filename="a.png"\r\n\r\n\x89PNG truncated without a closing boundary',
    });
    assert.ok(garbage.status >= 400 && garbage.status < 500, String(garbage.status));
    const noBoundary = await fetch(`${base}/api/uploads?template=user_photos`, { method: 'POST', headers: { authorization: `Bearer ${KEY}`, 'content-type': 'multipart/form-data' }, body: 'x' });
    assert.ok(noBoundary.status >= 400 && noBoundary.status < 500, String(noBoundary.status));
    assert.equal((await fetch(`${base}/health`)).status, 200);
  });
});
