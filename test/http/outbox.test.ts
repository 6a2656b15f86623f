/**
 * The HTTP service with an outbox, over loopback with a real client: every upload route
 * answers 202 with the queued write while the backend is down, reads of the key serve
 * the queued bytes, health and metrics show the outbox, a full outbox answers 507; and
 * the service as a real process starts with the backend unreachable only when it has an
 * outbox.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { FastifyInstance } from 'fastify';
import { buildApp, FsDriver, outboxOf, Storage, withOutbox, type OutboxControl, type WriteResult } from '../../src/index.js';
import { FAST, Switch, tempDir, waitFor } from '../layers/outbox/helpers.js';
import { freePort, LISTENING, png, runServerWithin, TEST_SECRET } from './helpers.js';

const sha256 = (bytes: Buffer | string) => createHash('sha256').update(bytes).digest('hex');

describe('HTTP service with an outbox', () => {
  let app: FastifyInstance;
  let base: string;
  let line: Switch;
  let storage: Storage<WriteResult>;
  let control: OutboxControl;
  let dir: string;

  before(async () => {
    // (Not tempDir: its clean-up would run once this hook ends.)
    dir = await mkdtemp(join(tmpdir(), 'stowage-http-outbox-'));
    const port = await freePort();
    line = new Switch(new FsDriver({ root: join(dir, 'data') }));
    storage = new Storage<WriteResult>(withOutbox(line, { dir: join(dir, 'outbox'), maxBytes: 1024 * 1024, ...FAST }), { baseUrl: `http://127.0.0.1:${port}`, signingSecret: TEST_SECRET });
    control = outboxOf(storage.driver) as OutboxControl;
    app = await buildApp({ storage, logger: false });
    base = await app.listen({ host: '127.0.0.1', port });
  });
  after(async () => {
    await app.close();
    await storage.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('answers PUT with 201 while the backend is up, 202 and the queued write while it is down; GET and HEAD serve the queued bytes', async () => {
    const up = await fetch(`${base}/api/objects/docs/up.txt`, { method: 'PUT', body: 'stored', headers: { 'content-type': 'text/plain' } });
    assert.equal(up.status, 201);
    line.down = true;
    const res = await fetch(`${base}/api/objects/docs/q.txt`, { method: 'PUT', body: 'queued bytes', headers: { 'content-type': 'text/plain' } });
    assert.equal(res.status, 202);
    const body = (await res.json()) as Record<string, unknown>;
    assert.equal(body.status, 'queued');
    assert.equal(body.key, 'docs/q.txt');
    assert.equal(body.size, 12);
    assert.equal(body.sha256, sha256('queued bytes'));
    assert.equal(typeof body.id, 'string');
    assert.equal(body.reason, 'E_UNAVAILABLE');
    const got = await fetch(`${base}/api/objects/docs/q.txt`);
    assert.equal(got.status, 200);
    assert.equal(await got.text(), 'queued bytes');
    assert.equal(got.headers.get('content-type'), 'text/plain');
    const head = await fetch(`${base}/api/objects/docs/q.txt`, { method: 'HEAD' });
    assert.equal(head.status, 200);
    assert.equal(head.headers.get('content-length'), '12');
    const range = await fetch(`${base}/api/objects/docs/q.txt`, { headers: { range: 'bytes=0-5' } });
    assert.equal(range.status, 206);
    assert.equal(await range.text(), 'queued');
    line.down = false;
    await waitFor(async () => (await control.status()).pending === 0, 'delivery');
    assert.equal((await new Storage(line.inner).get('docs/q.txt')).toString(), 'queued bytes');
  });

  it('answers 202 on a signed PUT, a signed form POST and an upload, and health and metrics show the outbox', async () => {
    line.down = true;
    try {
      const put = await storage.signedUrl('signed/put.bin', { method: 'PUT' });
      const signed = await fetch(put.url, { method: 'PUT', body: 'signed put', headers: put.headers });
      assert.equal(signed.status, 202);
      assert.equal(((await signed.json()) as { status: string }).status, 'queued');

      const form = await storage.presignPost('signed/form.bin');
      const data = new FormData();
      for (const [name, value] of Object.entries(form.fields)) data.append(name, value);
      data.append('file', new Blob(['form body']), 'form.bin');
      const posted = await fetch(form.url, { method: 'POST', body: data });
      assert.equal(posted.status, 202);
      assert.equal(((await posted.json()) as { key: string }).key, 'signed/form.bin');

      const upload = new FormData();
      upload.append('file', new Blob([png(100)], { type: 'image/png' }), 'photo.png');
      const uploaded = await fetch(`${base}/api/uploads`, { method: 'POST', body: upload });
      assert.equal(uploaded.status, 202);
      const files = ((await uploaded.json()) as { files: { status: string; key: string; id: string; url: string }[] }).files;
      assert.equal(files.length, 1);
      assert.equal(files[0]?.status, 'queued');
      assert.ok(files[0]?.id);
      assert.equal((await fetch(`${base}${files[0]?.url}`)).status, 200, 'the queued upload is served');

      const health = await fetch(`${base}/api/storage/health`);
      assert.equal(health.status, 503, 'the backend is what storage health reports on');
      const report = (await health.json()) as { status: string; outbox: { pending: number; pendingBytes: number; oldestSeconds: number; dead: number } };
      assert.equal(report.status, 'unavailable');
      assert.equal(report.outbox.pending, 3);
      assert.ok(report.outbox.pendingBytes > 0);
      assert.equal(report.outbox.dead, 0);
      assert.equal(typeof report.outbox.oldestSeconds, 'number');

      const metrics = await (await fetch(`${base}/metrics`)).text();
      assert.match(metrics, /^stowage_outbox_pending 3$/m);
      assert.match(metrics, /^stowage_outbox_pending_bytes \d+$/m);
      assert.match(metrics, /^stowage_outbox_oldest_seconds [\d.e+-]+$/m);
      assert.match(metrics, /^stowage_outbox_delivered_total 1$/m);
      assert.match(metrics, /^stowage_outbox_dead_total 0$/m);
    } finally {
      line.down = false;
    }
    await waitFor(async () => (await control.status()).pending === 0, 'delivery');
    const after = await (await fetch(`${base}/metrics`)).text();
    assert.match(after, /^stowage_outbox_delivered_total 4$/m);
    assert.match(after, /^stowage_outbox_pending 0$/m);
    const healthy = (await (await fetch(`${base}/api/storage/health`)).json()) as { status: string; outbox: { pending: number } };
    assert.equal(healthy.status, 'connected');
    assert.equal(healthy.outbox.pending, 0);
  });

  it('answers 507 E_QUOTA_EXCEEDED when the outbox is full, keeping what it holds', async () => {
    line.down = true;
    try {
      assert.equal((await fetch(`${base}/api/objects/full/a.bin`, { method: 'PUT', body: Buffer.alloc(700 * 1024) })).status, 202);
      const refused = await fetch(`${base}/api/objects/full/b.bin`, { method: 'PUT', body: Buffer.alloc(700 * 1024) });
      assert.equal(refused.status, 507);
      assert.equal(((await refused.json()) as { error: { code: string } }).error.code, 'E_QUOTA_EXCEEDED');
      assert.equal((await control.status()).pending, 1);
    } finally {
      line.down = false;
    }
    await waitFor(async () => (await control.status()).pending === 0, 'delivery');
    assert.equal((await fetch(`${base}/api/objects/full/a.bin`, { method: 'HEAD' })).headers.get('content-length'), String(700 * 1024));
  });
});

describe('the service as a process, with the backend unreachable', () => {
  /** An S3 backend at a port nothing listens on. */
  const deadS3 = async () => ({
    STORAGE_BACKEND: 's3',
    STORAGE_S3_BUCKET: 'unreachable',
    STORAGE_S3_ENDPOINT_URL: `http://127.0.0.1:${await freePort()}`,
    STORAGE_S3_ACCESS_KEY: 'key',
    STORAGE_S3_SECRET_KEY: 'secret-secret',
    STORAGE_S3_REGION: 'us-east-1',
    STORAGE_S3_FORCE_PATH_STYLE: 'true',
    PORT: '0',
  });

  it('refuses to start without an outbox, as before', async () => {
    const { code, output } = await runServerWithin(await deadS3(), /cannot start/, 120_000);
    assert.equal(code ?? 1, 1);
    assert.match(output, /cannot start/);
  });

  it('starts with an outbox, says so in its log and health, and queues uploads (202)', async () => {
    const dir = await tempDir('http-outbox-process');
    const { child, output } = await runServerWithin({ ...(await deadS3()), STOWAGE_OUTBOX_DIR: dir }, LISTENING, 120_000);
    try {
      const address = LISTENING.exec(output)?.[1] as string;
      assert.ok(address, output);
      assert.match(output, /backend is unreachable \(E_UNAVAILABLE/);
      const health = (await (await fetch(`${address}/api/storage/health`)).json()) as { status: string; outbox: { pending: number } };
      assert.equal(health.status, 'unavailable');
      assert.equal(health.outbox.pending, 0);
      const put = await fetch(`${address}/api/objects/a.txt`, { method: 'PUT', body: 'while down' });
      assert.equal(put.status, 202);
      assert.equal(await (await fetch(`${address}/api/objects/a.txt`)).text(), 'while down');
    } finally {
      child.kill('SIGKILL');
    }
  });
});
