/**
 * Signed form uploads (`POST /files/<key>`) on the fs backend: forms carry exactly the
 * fields the presign returned, refusals say why, and every upload route leaves the
 * previous version as it was when a write fails (the S3 run of that is in s3.test.ts).
 */
import assert from 'node:assert/strict';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { FastifyInstance } from 'fastify';
import { buildApp, createStorage, type Storage } from '../../src/index.js';
import { describeAllOrNothing } from './all-or-nothing.js';

const SECRET = 'forms-test-signing-secret-0123456789';
const fsStorage = async () => createStorage({ driver: 'fs', root: await mkdtemp(join(tmpdir(), 'stowage-forms-')), baseUrl: 'http://placeholder.invalid', signingSecret: SECRET });

describeAllOrNothing('fs', fsStorage, { signingSecret: SECRET });

describe('http: signed forms carry exactly the presigned fields', () => {
  let app: FastifyInstance;
  let base: string;
  let storage: Storage;

  before(async () => {
    storage = await fsStorage();
    app = await buildApp({ storage, signingSecret: SECRET, logger: false });
    base = await app.listen({ host: '127.0.0.1', port: 0 });
  });
  after(async () => app?.close());

  /** Presigns a form over HTTP; the action is rewritten onto this server (links are checked by path and query only). */
  async function presign(body: Record<string, unknown>): Promise<{ action: string; fields: Record<string, string> }> {
    const res = await fetch(`${base}/api/presign`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ method: 'POST', ...body }) });
    assert.equal(res.status, 200, await res.clone().text());
    const { url, fields } = (await res.json()) as { url: string; fields: Record<string, string> };
    const link = new URL(url);
    return { action: `${base}${link.pathname}${link.search}`, fields };
  }

  async function post(action: string, fields: [string, string][], fileType = 'image/png'): Promise<{ status: number; error?: { code: string; message: string } }> {
    const form = new FormData();
    for (const [name, value] of fields) form.append(name, value);
    form.append('file', new Blob([Buffer.alloc(100, 7)], { type: fileType }), 'upload.png');
    const res = await fetch(action, { method: 'POST', body: form });
    const body = (await res.json()) as { error?: { code: string; message: string } };
    return { status: res.status, error: body.error };
  }

  for (const [label, options] of [
    ['a signed type and size', { contentType: 'image/png', maxSize: 1000 }],
    ['a signed size only', { maxSize: 1000 }],
    ['nothing signed but the key', {}],
  ] as const) {
    it(`requires every field the presign returned, each once, and nothing else (${label})`, async () => {
      const key = `forms/${label.replaceAll(' ', '-')}.png`;
      const { action, fields } = await presign({ key, ...options });
      const given = Object.entries(fields);
      for (const [name] of given) {
        const without = await post(action, given.filter(([other]) => other !== name));
        assert.equal(without.status, 400, `without ${name}`);
        assert.equal(without.error?.code, 'E_INVALID_ARGUMENT');
        assert.match(without.error?.message ?? '', new RegExp(`lacks the field "${name}" the presign returned`));
        const twice = await post(action, [...given, [name, fields[name] as string]]);
        assert.equal(twice.status, 400, `${name} twice`);
        assert.match(twice.error?.message ?? '', /more than once/);
      }
      if (!('Content-Type' in fields)) {
        const unasked = await post(action, [...given, ['Content-Type', 'image/png']]);
        assert.equal(unasked.status, 400, 'a field the presign did not return');
        assert.match(unasked.error?.message ?? '', /form field "Content-Type" is not allowed \(the presign returned: none\)/);
      }
      assert.equal(await storage.exists(key), false, 'no refused form stored anything');
      const accepted = await post(action, given);
      assert.equal(accepted.status, 201, JSON.stringify(accepted.error));
      assert.equal((await storage.stat(key)).contentType, options.contentType ?? 'image/png');
    });
  }

  it('takes the type from the Content-Type field the presign returned, not from the file part', async () => {
    const { action, fields } = await presign({ key: 'forms/typed.png', contentType: 'image/png' });
    assert.deepEqual(fields, { 'Content-Type': 'image/png' });
    const onlyInPart = await post(action, [], 'image/png');
    assert.equal(onlyInPart.status, 400, 'the type in the file part alone is not the presigned field');
    const accepted = await post(action, Object.entries(fields), 'application/octet-stream');
    assert.equal(accepted.status, 201);
    assert.equal((await storage.stat('forms/typed.png')).contentType, 'image/png');
  });

  it('says which type a signed form requires', async () => {
    const { action } = await presign({ key: 'forms/wrong-type.png', contentType: 'image/png' });
    const wrong = await post(action, [['Content-Type', 'text/html']]);
    assert.equal(wrong.status, 403);
    assert.deepEqual([wrong.error?.code, wrong.error?.message], ['E_ACCESS_DENIED', 'This link requires Content-Type "image/png"; the request sent "text/html".']);
    assert.equal(await storage.exists('forms/wrong-type.png'), false);
  });
});
