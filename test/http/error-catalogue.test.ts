/**
 * The catalogue of error codes (src/http/catalogue.ts) is the one list of what the
 * service answers with: the README's table is what `npm run docs:errors` renders from
 * it, the OpenAPI document served by a listening server lists exactly its codes on
 * every route's error answers, and Fastify's own errors, provoked over real HTTP (on the
 * app's own routes too), reach a client only as catalogued codes at their statuses.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import type { FastifyInstance } from 'fastify';
import { buildApp, createStorage } from '../../src/index.js';
import { ERROR_CATALOGUE, HTTP_ERROR_CODES, type HttpErrorCode } from '../../src/http/catalogue.js';
import { FRAMEWORK_STATUS_CODES } from '../../src/http/errors.js';
import { README_PATH, withErrorTable } from '../../scripts/error-table.js';

const SECRET = 'catalogue-secret-0123456789';

/** A listening service with an upload template and CORS (whose preflight routes live outside the routes plugin). */
async function listen(): Promise<{ app: FastifyInstance; base: string }> {
  const storage = createStorage({ driver: 'memory', baseUrl: 'http://127.0.0.1:1', signingSecret: SECRET });
  const app = await buildApp({
    storage,
    signingSecret: SECRET,
    logger: false,
    corsOrigins: ['https://app.example'],
    uploadPolicies: { photos: { template: 'p/{uuid}.{ext}', maxSize: 1000, allowedTypes: ['image/png'] } },
  });
  return { app, base: await app.listen({ host: '127.0.0.1', port: 0 }) };
}

describe('http: the README lists the catalogue', () => {
  it('has the error table `npm run docs:errors` writes from the catalogue', () => {
    const readme = readFileSync(README_PATH, 'utf8');
    assert.ok(readme === withErrorTable(readme), "README.md's HTTP error table differs from the catalogue: run `npm run docs:errors`");
    for (const code of HTTP_ERROR_CODES) assert.ok(readme.includes(`| \`${code}\` | ${ERROR_CATALOGUE[code].status} |`), `${code} is in the table`);
  });

  it('maps framework errors by status onto codes of that status', () => {
    for (const [status, code] of Object.entries(FRAMEWORK_STATUS_CODES)) assert.equal(ERROR_CATALOGUE[code].status, Number(status), `${code} for framework errors with status ${status}`);
  });
});

describe('http: the OpenAPI document lists the catalogue', () => {
  let app: FastifyInstance;
  let base: string;
  before(async () => ({ app, base } = await listen()));
  after(async () => app?.close());

  it("gives every route's 4xx and 5xx answers the error shape, with exactly the catalogue's codes", async () => {
    type Responses = Record<string, { content?: Record<string, { schema?: { $ref?: string } }> }>;
    type ErrorSchema = { required: string[]; properties: { error: { required: string[]; properties: { code: { enum: string[] } } } } };
    const res = await fetch(`${base}/openapi.json`);
    assert.equal(res.status, 200);
    const doc = (await res.json()) as { components: { schemas: Record<string, ErrorSchema> }; paths: Record<string, Record<string, { responses: Responses }>> };
    const schema = doc.components.schemas.StowageError;
    assert.ok(schema, 'the error shape is a shared component, StowageError');
    assert.deepEqual(schema.required, ['error']);
    assert.deepEqual(schema.properties.error.required, ['code', 'message', 'requestId']);
    assert.deepEqual([...schema.properties.error.properties.code.enum].sort(), [...HTTP_ERROR_CODES].sort());
    const operations = Object.entries(doc.paths).flatMap(([path, methods]) => Object.entries(methods).map(([method, op]) => [`${method.toUpperCase()} ${path}`, op.responses] as const));
    assert.ok(operations.length >= 10, `the routes are documented: ${operations.map(([name]) => name).join(', ')}`);
    for (const [name, responses] of operations) {
      for (const range of ['4XX', '5XX']) {
        assert.equal(responses[range]?.content?.['application/json']?.schema?.$ref, '#/components/schemas/StowageError', `${name} documents its ${range} answers`);
      }
    }
  });
});

describe("http: Fastify's own errors reach clients as catalogued codes", () => {
  let app: FastifyInstance;
  let base: string;
  before(async () => ({ app, base } = await listen()));
  after(async () => app?.close());

  const json = { 'content-type': 'application/json' };
  const form = { 'content-type': 'multipart/form-data; boundary=b' };
  const cases: [string, string, string, RequestInit, HttpErrorCode][] = [
    // what, method, path, request, expected code (answered at its catalogued status)
    ['malformed JSON', 'POST', '/api/presign', { headers: json, body: '{"key":' }, 'E_INVALID_ARGUMENT'],
    ['an empty JSON body', 'POST', '/api/presign', { headers: json, body: '' }, 'E_INVALID_ARGUMENT'],
    ['a body that fails the schema', 'POST', '/api/presign', { headers: json, body: '{"method":"GET"}' }, 'E_INVALID_ARGUMENT'],
    ['a JSON body over the limit', 'POST', '/api/presign', { headers: json, body: JSON.stringify({ key: 'x'.repeat(2 * 1024 * 1024), method: 'GET' }) }, 'E_TOO_LARGE'],
    ['a Content-Type no parser takes', 'POST', '/api/presign', { headers: { 'content-type': 'application/x-unknown' }, body: 'x' }, 'E_UNSUPPORTED_MEDIA_TYPE'],
    ['an upload that is not multipart', 'POST', '/api/uploads?template=photos', { headers: json, body: '{}' }, 'E_UNSUPPORTED_MEDIA_TYPE'],
    ['an upload cut off mid-part', 'POST', '/api/uploads?template=photos', { headers: form, body: '--b\r\nContent-Disposition: form-data; name="file"; filename="a.png"\r\n\r\n\x89PNG' }, 'E_MALFORMED_MULTIPART'],
    ['an upload with too many fields', 'POST', '/api/uploads?template=photos', { headers: form, body: `${Array.from({ length: 30 }, (_, i) => `--b\r\nContent-Disposition: form-data; name="f${i}"\r\n\r\nv\r\n`).join('')}--b--\r\n` }, 'E_MALFORMED_MULTIPART'],
    ['a query that fails the schema', 'GET', '/api/objects?limit=abc', {}, 'E_INVALID_ARGUMENT'],
    ['a path that is not valid percent-encoding', 'GET', '/api/objects/%E0%A4%A', {}, 'E_INVALID_ARGUMENT'],
    ['an unknown route', 'GET', '/api/nothing', {}, 'E_ROUTE_NOT_FOUND'],
    // The CORS preflight route is the app's, outside the routes plugin, and parses bodies.
    ['malformed JSON sent to a preflight route', 'OPTIONS', '/api/presign', { headers: json, body: '{"key":' }, 'E_INVALID_ARGUMENT'],
    ['a preflight route sent a Content-Type no parser takes', 'OPTIONS', '/api/objects/a.txt', { headers: { 'content-type': 'application/x-unknown' }, body: 'x' }, 'E_UNSUPPORTED_MEDIA_TYPE'],
  ];
  for (const [what, method, path, init, code] of cases) {
    it(`answers ${what} with ${ERROR_CATALOGUE[code].status} ${code}`, async () => {
      const res = await fetch(`${base}${path}`, { method, ...init });
      const body = (await res.json()) as { error: { code: string; message: string; requestId: string } };
      assert.deepEqual([res.status, body.error?.code], [ERROR_CATALOGUE[code].status, code], JSON.stringify(body));
      assert.deepEqual(Object.keys(body), ['error'], 'the error shape, nothing else');
      assert.equal(typeof body.error.message, 'string');
      assert.ok(body.error.requestId, 'with the request id');
    });
  }
});
