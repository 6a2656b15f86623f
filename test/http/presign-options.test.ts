/**
 * `POST /api/presign` honours what it can and refuses what cannot work, over real HTTP
 * on the fs backend and in the library on memory: `responseContentType` reaches the
 * signed link and the `/files/` route serves it; a `download` name with a lone
 * surrogate, or a type a client could never send back, is a 400 naming the option
 * rather than a link that always answers 403.
 */
import assert from 'node:assert/strict';
import { rm } from 'node:fs/promises';
import { after, before, describe, it } from 'node:test';
import type { FastifyInstance } from 'fastify';
import { createStorage, isStorageError, type Storage } from '../../src/index.js';
import { startFsService, TEST_SECRET } from './helpers.js';

let app: FastifyInstance;
let base: string;
let root: string;
let storage: Storage;

before(async () => {
  ({ app, base, root, storage } = await startFsService());
  await storage.put('docs/report.bin', Buffer.from('%PDF-1.4 report'), { contentType: 'application/octet-stream' });
});
after(async () => {
  await app.close();
  await rm(root, { recursive: true, force: true });
});

/** Presigns with a JSON body written as given (lone surrogates survive JSON.stringify as escapes). */
async function presign(body: Record<string, unknown>): Promise<{ status: number; json: { url?: string; error?: { code: string; message: string } } }> {
  const res = await fetch(`${base}/api/presign`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  return { status: res.status, json: (await res.json()) as never };
}

function refusedNaming(res: Awaited<ReturnType<typeof presign>>, option: string): void {
  assert.equal(res.status, 400, JSON.stringify(res.json));
  assert.equal(res.json.error?.code, 'E_INVALID_ARGUMENT');
  assert.match(res.json.error?.message ?? '', new RegExp(option), 'the client is told which option');
}

describe('http: presign options', () => {
  it('honours responseContentType on fs links: the /files/ route serves the signed type', async () => {
    const signed = await presign({ key: 'docs/report.bin', method: 'GET', responseContentType: 'application/pdf', download: 'Report 2024.pdf' });
    assert.equal(signed.status, 200);
    const res = await fetch(signed.json.url as string);
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('content-type'), 'application/pdf');
    assert.match(res.headers.get('content-disposition') ?? '', /^attachment; filename="Report 2024\.pdf"/);
    const head = await fetch(signed.json.url as string, { method: 'HEAD' });
    assert.equal(head.headers.get('content-type'), 'application/pdf');
  });

  it('refuses a download name with a lone surrogate, which no link could carry', async () => {
    for (const name of ['\ud800.txt', 'a\udc00b.txt']) {
      refusedNaming(await presign({ key: 'docs/report.bin', method: 'GET', download: name }), 'download');
      await assert.rejects(storage.signedUrl('docs/report.bin', { method: 'GET', download: name }), (err) => isStorageError(err, 'E_INVALID_ARGUMENT'));
    }
    // A well-formed astral name still works end to end.
    const emoji = await presign({ key: 'docs/report.bin', method: 'GET', download: 'report 📄.pdf' });
    assert.equal((await fetch(emoji.json.url as string)).status, 200);
  });

  it('refuses types a client could never send back or a server serve, naming the option', async () => {
    refusedNaming(await presign({ key: 'docs/report.bin', method: 'GET', responseContentType: 'text/plain; name=€' }), 'responseContentType');
    refusedNaming(await presign({ key: 'up/a.txt', method: 'PUT', contentType: 'text/plain; charset=ü' }), 'contentType');
    refusedNaming(await presign({ key: 'up/a.txt', method: 'POST', contentType: 'text/plain;\u2028x' }), 'contentType');
    const memory = createStorage({ driver: 'memory', baseUrl: 'http://127.0.0.1:1', signingSecret: TEST_SECRET });
    await assert.rejects(memory.signedUrl('k', { method: 'PUT', contentType: 'text/plain; x=€' }), (err) => isStorageError(err, 'E_INVALID_ARGUMENT') && /contentType/.test(err.publicMessage));
    await assert.rejects(memory.put('k', 'x', { contentType: 'text/plain; x=€' }), (err) => isStorageError(err, 'E_INVALID_ARGUMENT'));
  });

  it('keeps links with ordinary parameters working', async () => {
    const put = await presign({ key: 'up/b.txt', method: 'PUT', contentType: 'text/plain; charset=utf-8' });
    assert.equal(put.status, 200);
    const stored = await fetch(put.json.url as string, { method: 'PUT', headers: { 'content-type': 'text/plain; charset=utf-8' }, body: 'hi' });
    assert.equal(stored.status, 201);
  });
});
