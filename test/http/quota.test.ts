/**
 * Quotas over HTTP, on a real listening service with the fs backend: an upload that
 * cannot fit is 507 with nothing stored (refused before its body is read when it declares
 * its length), racing uploads never pass the limit, presigning respects the room left,
 * `GET /api/usage` reports it, health says `degraded` past a threshold, and the metrics
 * carry per-pattern gauges.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { FastifyInstance } from 'fastify';
import { buildApp, createStorage, type Storage } from '../../src/index.js';

describe('quotas over HTTP (fs)', () => {
  let root: string;
  let app: FastifyInstance;
  let base: string;
  let storage: Storage;
  const logs: string[] = [];

  before(async () => {
    root = await mkdtemp(join(tmpdir(), 'stowage-http-quota-'));
    storage = createStorage({
      driver: 'fs', root, baseUrl: 'http://127.0.0.1', signingSecret: 'a-signing-secret-of-enough-length-0123',
      quotas: { rules: { 'users/*/': { maxBytes: 10_000, warnAt: 0.5 }, '': { maxObjects: 1000 } }, log: (line) => logs.push(line) },
    });
    app = await buildApp({ storage, logger: false, signingSecret: 'a-signing-secret-of-enough-length-0123' });
    base = await app.listen({ host: '127.0.0.1', port: 0 });
  });
  after(async () => {
    await app.close();
    await storage.close();
    await rm(root, { recursive: true, force: true });
  });

  const put = (key: string, size: number) => fetch(`${base}/api/objects/${key}`, { method: 'PUT', body: Buffer.alloc(size, 'q') });

  it('answers 507 E_QUOTA_EXCEEDED for an upload that cannot fit, storing nothing', async () => {
    assert.equal((await put('users/ann/a.bin', 4000)).status, 201);
    const refused = await put('users/ann/b.bin', 7000);
    assert.equal(refused.status, 507);
    const body = (await refused.json()) as { error: { code: string; message: string } };
    assert.equal(body.error.code, 'E_QUOTA_EXCEEDED');
    assert.equal((await fetch(`${base}/api/objects/users/ann/b.bin`)).status, 404);
  });

  it('never lets racing uploads pass the limit', async () => {
    const statuses = await Promise.all(Array.from({ length: 20 }, (_, i) => put(`users/race/${i}.bin`, 1000).then((r) => r.status)));
    assert.equal(statuses.filter((s) => s === 201).length, 10);
    assert.equal(statuses.filter((s) => s === 507).length, 10);
    assert.equal((await storage.usage({ prefix: 'users/race/' })).bytes, 10_000);
  });

  it('reports usage and limits for a folder, and refuses a prefix that is not one', async () => {
    const answer = await fetch(`${base}/api/usage?prefix=users/ann/`);
    assert.equal(answer.status, 200);
    const usage = (await answer.json()) as { prefix: string; quotas: { quota: string; prefix: string; usedBytes: number; maxBytes?: number; level: string }[] };
    assert.equal(usage.prefix, 'users/ann/');
    const folder = usage.quotas.find((q) => q.quota === 'users/*/');
    assert.deepEqual([folder?.prefix, folder?.usedBytes, folder?.maxBytes, folder?.level], ['users/ann/', 4000, 10_000, 'ok']);
    assert.ok(usage.quotas.some((q) => q.quota === '' && q.prefix === ''));
    assert.equal((await fetch(`${base}/api/usage?prefix=users/ann`)).status, 400);
  });

  it('refuses to presign an upload larger than the room left, and caps a form by it', async () => {
    const presign = (body: object) => fetch(`${base}/api/presign`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
    assert.equal((await presign({ key: 'users/ann/c.bin', method: 'PUT', contentLength: 7000 })).status, 507);
    assert.equal((await presign({ key: 'users/ann/c.bin', method: 'PUT', contentLength: 6000 })).status, 200);
    const form = (await (await presign({ key: 'users/ann/c.bin', method: 'POST', maxSize: 1_000_000 })).json()) as { url: string };
    // The form's signed terms carry the size cap: the room left (6000 bytes), not what was asked.
    const cap = await fetch(form.url.replace('http://127.0.0.1', base), { method: 'POST', body: (() => {
      const data = new FormData();
      data.append('file', new Blob([Buffer.alloc(6001, 'f')]), 'c.bin');
      return data;
    })() });
    assert.equal(cap.status, 413);
  });

  it('says degraded in health while a quota is past its threshold, naming the pattern, not the folder', async () => {
    const health = (await (await fetch(`${base}/api/storage/health`)).json()) as { status: string; quotas?: { quota: string; level: string; folders: number }[] };
    assert.equal(health.status, 'degraded');
    // users/race/ is full; users/ann/ (4000 of 10000) is under its 50 % threshold.
    assert.deepEqual(health.quotas, [{ quota: 'users/*/', level: 'full', folders: 1 }]);
    assert.ok(!JSON.stringify(health).includes('users/race/'));
    assert.equal(logs.filter((l) => l.includes('users/race/')).length, 2, logs.join('\n'));
  });

  it('exports per-pattern gauges at /metrics', async () => {
    const text = await (await fetch(`${base}/metrics`)).text();
    assert.match(text, /stowage_quota_used_bytes\{quota="users\/\*\/"\} 10000/);
    assert.match(text, /stowage_quota_limit_bytes\{quota="users\/\*\/"\} 10000/);
    assert.match(text, /stowage_quota_limit_objects\{quota=""\} 1000/);
    assert.match(text, /stowage_quota_folders_past_threshold\{quota="users\/\*\/"\} 1/);
    assert.ok(!text.includes('users/race/'));
  });
});
