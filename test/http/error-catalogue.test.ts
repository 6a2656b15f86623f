/**
 * The README's table of HTTP error codes is complete and right: every code the service
 * can answer with, collected from the source (the StorageError codes' statuses, the
 * error handler's own codes, the mapping of Fastify's errors, every HttpError thrown),
 * is listed with its status. Then Fastify's own errors are provoked over real HTTP, to
 * see that none of its FST_* codes reaches a client, only documented ones.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { FastifyInstance } from 'fastify';
import { buildApp, createStorage } from '../../src/index.js';
import { FRAMEWORK_ERRORS, FRAMEWORK_STATUS_CODES, HANDLER_STATUS, HTTP_STATUS } from '../../src/http/errors.js';

const ROOT = new URL('../../', import.meta.url).pathname;

/** The README's HTTP error table: code to status. */
function documentedStatuses(): Map<string, number> {
  const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
  const section = readme.slice(readme.indexOf('## HTTP service'));
  const lines = section.split('\n');
  const header = lines.findIndex((line) => /^\| code \| HTTP \|/.test(line));
  assert.ok(header > 0, 'the HTTP service section has a table of codes and statuses');
  const documented = new Map<string, number>();
  for (const line of lines.slice(header + 2)) {
    if (!line.startsWith('|')) break;
    const cells = line.split('|').slice(1, -1).map((cell) => cell.trim());
    for (let i = 0; i + 1 < cells.length; i += 3) {
      const status = Number(cells[i + 1]);
      for (const [, code] of (cells[i] ?? '').matchAll(/`(E_[A-Z0-9_]+)`/g)) {
        assert.ok(!documented.has(code as string), `${code} is listed once`);
        documented.set(code as string, status);
      }
    }
  }
  return documented;
}

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return sourceFiles(path);
    return entry.name.endsWith('.ts') ? [path] : [];
  });
}

/** Every [code, status] the service can answer with, from the source; status undefined where the source does not say. */
function answerableCodes(): [string, number | undefined, string][] {
  const codes: [string, number | undefined, string][] = [
    ...Object.entries(HTTP_STATUS).map(([code, status]): [string, number, string] => [code, status, 'HTTP_STATUS']),
    ...Object.entries(HANDLER_STATUS).map(([code, status]): [string, number, string] => [code, status, 'the error handler']),
    ...Object.entries(FRAMEWORK_ERRORS).map(([fst, [status, code]]): [string, number, string] => [code, status, `the mapping of ${fst}`]),
    ...Object.entries(FRAMEWORK_STATUS_CODES).map(([status, code]): [string, number, string] => [code, Number(status), `the mapping of framework errors with status ${status}`]),
  ];
  for (const file of sourceFiles(join(ROOT, 'src'))) {
    const text = readFileSync(file, 'utf8');
    const where = file.slice(ROOT.length);
    for (const [, status, code] of text.matchAll(/new HttpError\(\s*(\d{3}),\s*'(E_[A-Z0-9_]+)'/g)) codes.push([code as string, Number(status), where]);
    for (const [, code] of text.matchAll(/errorBody\(\s*'(E_[A-Z0-9_]+)'/g)) codes.push([code as string, undefined, where]);
  }
  return codes;
}

describe('http: the README lists every error code the service answers with', () => {
  it('lists each code collected from the source, with its status', () => {
    const documented = documentedStatuses();
    const codes = answerableCodes();
    assert.ok(codes.some(([code]) => code === 'E_TOO_MANY_FILES') && codes.some(([code]) => code === 'E_UNAUTHENTICATED'), 'the source scan finds HttpError and handler codes');
    for (const [code, status, where] of codes) {
      assert.ok(documented.has(code), `${code} (from ${where}) is in the README's HTTP error table`);
      if (status !== undefined) assert.equal(documented.get(code), status, `${code} (from ${where}) is listed with HTTP ${status}`);
    }
  });
});

describe("http: Fastify's own errors reach clients as documented codes", () => {
  let app: FastifyInstance;
  let base: string;
  const documented = documentedStatuses();

  before(async () => {
    const storage = createStorage({ driver: 'memory', baseUrl: 'http://127.0.0.1:1', signingSecret: 'catalogue-secret-0123456789' });
    app = await buildApp({ storage, signingSecret: 'catalogue-secret-0123456789', logger: false, uploadPolicies: { photos: { template: 'p/{uuid}.{ext}', maxSize: 1000, allowedTypes: ['image/png'] } } });
    base = await app.listen({ host: '127.0.0.1', port: 0 });
  });
  after(async () => app?.close());

  const json = { 'content-type': 'application/json' };
  const cases: [string, string, string, RequestInit, number, string][] = [
    // what, method, path, request, expected status, expected code
    ['malformed JSON', 'POST', '/api/presign', { headers: json, body: '{"key":' }, 400, 'E_INVALID_ARGUMENT'],
    ['an empty JSON body', 'POST', '/api/presign', { headers: json, body: '' }, 400, 'E_INVALID_ARGUMENT'],
    ['a body that fails the schema', 'POST', '/api/presign', { headers: json, body: '{"method":"GET"}' }, 400, 'E_INVALID_ARGUMENT'],
    ['a JSON body over the limit', 'POST', '/api/presign', { headers: json, body: JSON.stringify({ key: 'x'.repeat(2 * 1024 * 1024), method: 'GET' }) }, 413, 'E_TOO_LARGE'],
    ['a Content-Type no parser takes', 'POST', '/api/presign', { headers: { 'content-type': 'application/x-unknown' }, body: 'x' }, 415, 'E_UNSUPPORTED_MEDIA_TYPE'],
    ['an upload that is not multipart', 'POST', '/api/uploads?template=photos', { headers: json, body: '{}' }, 415, 'E_UNSUPPORTED_MEDIA_TYPE'],
    ['an upload cut off mid-part', 'POST', '/api/uploads?template=photos', { headers: { 'content-type': 'multipart/form-data; boundary=b' }, body: '--b\r\nContent-Disposition: form-data; name="file"; filename="a.png"\r\n\r\n\x89PNG' }, 400, 'E_MALFORMED_MULTIPART'],
    ['an upload with too many fields', 'POST', '/api/uploads?template=photos', { headers: { 'content-type': 'multipart/form-data; boundary=b' }, body: `${Array.from({ length: 30 }, (_, i) => `--b\r\nContent-Disposition: form-data; name="f${i}"\r\n\r\nv\r\n`).join('')}--b--\r\n` }, 400, 'E_MALFORMED_MULTIPART'],
    ['a query that fails the schema', 'GET', '/api/objects?limit=abc', {}, 400, 'E_INVALID_ARGUMENT'],
    ['a path that is not valid percent-encoding', 'GET', '/api/objects/%E0%A4%A', {}, 400, 'E_INVALID_ARGUMENT'],
    ['an unknown route', 'GET', '/api/nothing', {}, 404, 'E_ROUTE_NOT_FOUND'],
  ];
  for (const [what, method, path, init, status, code] of cases) {
    it(`answers ${what} with ${status} ${code}`, async () => {
      const res = await fetch(`${base}${path}`, { method, ...init });
      const body = (await res.json()) as { error: { code: string; message: string } };
      assert.deepEqual([res.status, body.error.code], [status, code], body.error.message);
      assert.equal(documented.get(body.error.code), res.status, 'a documented code, with its documented status');
    });
  }
});
