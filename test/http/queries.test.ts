/**
 * Query strings and Range headers over real HTTP on the fs backend: a repeated,
 * malformed or (for the listing) unknown parameter is a 400 on every route that reads
 * the query, HEAD included, never a 500 and never a guess; huge Range positions follow
 * RFC 9110 (the S3 run of those is in s3.test.ts).
 */
import assert from 'node:assert/strict';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { FastifyInstance } from 'fastify';
import { buildApp, createStorage, type Storage } from '../../src/index.js';
import { describeHugeRanges } from './ranges.js';
import { rawRequest } from './helpers.js';

const SECRET = 'queries-test-signing-secret-0123456789';
const fsStorage = async () => createStorage({ driver: 'fs', root: await mkdtemp(join(tmpdir(), 'stowage-queries-')), baseUrl: 'http://placeholder.invalid', signingSecret: SECRET });

describeHugeRanges('fs', fsStorage);

describe('http: repeated and malformed query parameters', () => {
  let app: FastifyInstance;
  let base: string;
  let storage: Storage;

  before(async () => {
    storage = await fsStorage();
    await storage.put('q/a.txt', 'hello');
    app = await buildApp({ storage, signingSecret: SECRET, logger: false, uploadPolicies: { docs: { template: 'up/{uuid}.{ext}', maxSize: 1000, allowedTypes: ['image/png'] } } });
    base = await app.listen({ host: '127.0.0.1', port: 0 });
  });
  after(async () => app?.close());

  /** A signed link's path and query on this server (links are checked by path and query only). */
  async function signedPath(method: 'GET' | 'PUT' | 'POST'): Promise<string> {
    const link = new URL(method === 'POST' ? (await storage.presignPost('q/a.txt', {})).url : (await storage.signedUrl('q/a.txt', { method, download: method === 'GET' ? 'a.txt' : undefined })).url);
    return `${link.pathname}${link.search}`;
  }

  async function refused(method: string, path: string, body?: string): Promise<void> {
    const res = await rawRequest(base, method, path, body);
    assert.equal(res.status, 400, `${method} ${path}`);
    if (method !== 'HEAD') assert.equal(res.json.error?.code, 'E_INVALID_ARGUMENT', `${method} ${path}`);
  }

  it('refuses a repeated parameter with 400 on GET and HEAD of an object, and on the listing', async () => {
    for (const method of ['GET', 'HEAD']) {
      await refused(method, '/api/objects/q/a.txt?download=a&download=b');
      await refused(method, '/api/objects/q/a.txt?redirect=1&redirect=1');
      await refused(method, '/api/objects/q/a.txt?v=1&v=2');
    }
    await refused('DELETE', '/api/objects/q/a.txt?x=1&x=1');
    await refused('PUT', '/api/objects/q/a.txt?x=1&x=1', 'overwritten');
    for (const query of ['prefix=q/&prefix=r/', 'limit=1&limit=2', 'cursor=a&cursor=b', 'delimiter=/&delimiter=/']) await refused('GET', `/api/objects?${query}`);
    await refused('POST', '/api/uploads?template=docs&template=docs', '');
    assert.equal((await storage.get('q/a.txt')).toString(), 'hello', 'nothing was written or deleted');
  });

  it('refuses malformed percent-encoding in a parameter with 400, never serving it as raw text', async () => {
    for (const method of ['GET', 'HEAD']) {
      await refused(method, '/api/objects/q/a.txt?download=%E0%A4%A');
      await refused(method, '/api/objects/q/a.txt?download=%ED%A0%80');
      await refused(method, '/api/objects/q/a.txt?download=');
    }
    await refused('GET', '/api/objects?prefix=%ZZ');
    const ok = await fetch(`${base}/api/objects/q/a.txt?download=${encodeURIComponent('résumé 1+1.txt')}&v=3`, { method: 'HEAD' });
    assert.equal(ok.status, 200, 'well-formed parameters, and unknown ones such as a cache buster, still work');
    assert.match(ok.headers.get('content-disposition') ?? '', /filename\*=UTF-8''r%C3%A9sum%C3%A9%201%2B1\.txt/);
  });

  it('refuses unknown listing parameters instead of listing everything', async () => {
    const res = await fetch(`${base}/api/objects?prefx=q/`);
    assert.equal(res.status, 400);
    assert.equal(((await res.json()) as { error: { code: string } }).error.code, 'E_INVALID_ARGUMENT');
    assert.equal((await fetch(`${base}/api/objects?prefix=q/&limit=10`)).status, 200);
  });

  it('refuses repeated or malformed parameters on signed /files/ links', async () => {
    for (const method of ['GET', 'HEAD', 'PUT'] as const) {
      const path = await signedPath(method === 'HEAD' ? 'GET' : method);
      const asSigned = await fetch(`${base}${path}`, { method, body: method === 'PUT' ? 'x' : undefined });
      assert.equal(asSigned.status, method === 'PUT' ? 201 : 200, `${method} as signed`);
      await asSigned.arrayBuffer();
      await refused(method, `${path}&X-Stowage-Method=${method === 'PUT' ? 'PUT' : 'GET'}`, method === 'PUT' ? 'x' : undefined);
      await refused(method, `${path}&X-Stowage-Expires=9999999999`, method === 'PUT' ? 'x' : undefined);
      await refused(method, `${path}&note=%E0%A4%A`, method === 'PUT' ? 'x' : undefined);
    }
    await refused('POST', `${await signedPath('POST')}&X-Stowage-Method=POST`, '');
    const download = await signedPath('GET');
    await refused('GET', `${download}&X-Stowage-Download=evil.html`);
  });
});
