/**
 * tus through the outbox, over loopback with tus-js-client: with the backend down, an
 * upload is created, sent in part, the service is restarted (a new storage on the same
 * outbox folder and port), the client resumes from the offset the service reports, and
 * the finished upload is queued: its key comes back in `Stowage-Object-Key`, GET serves
 * it from the queue, and once the backend is back the object and the upload's record
 * are delivered to it.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import type { FastifyInstance } from 'fastify';
import * as tus from 'tus-js-client';
import { buildApp, FsDriver, outboxOf, Storage, withOutbox, type OutboxControl, type WriteResult } from '../../../src/index.js';
import { TusRecords } from '../../../src/http/tus/records.js';
import { FAST, sha256, Switch, waitFor } from '../../layers/outbox/helpers.js';
import { freePort } from '../helpers.js';

describe('tus with an outbox, while the backend is down', () => {
  let dir: string;
  let service: { app: FastifyInstance; storage: Storage<WriteResult>; line: Switch; control: OutboxControl } | undefined;

  async function start(port: number, down: boolean): Promise<NonNullable<typeof service>> {
    const line = new Switch(new FsDriver({ root: join(dir, 'data') }));
    line.down = down;
    const storage = new Storage<WriteResult>(withOutbox(line, { dir: join(dir, 'outbox'), ...FAST }));
    const app = await buildApp({ storage, logger: false });
    await app.listen({ host: '127.0.0.1', port });
    service = { app, storage, line, control: outboxOf(storage.driver) as OutboxControl };
    return service;
  }
  async function stop(): Promise<void> {
    await service?.app.close();
    await service?.storage.close();
    service = undefined;
  }
  after(async () => {
    await stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('creates, resumes across a restart and completes an upload, queued, then delivered with its record', async () => {
    dir = await mkdtemp(join(tmpdir(), 'stowage-tus-outbox-'));
    const port = await freePort();
    const endpoint = `http://127.0.0.1:${port}/api/tus/`;
    await start(port, true);
    const data = Buffer.from(Array.from({ length: 1024 * 1024 + 3 }, (_, i) => (i * 7) % 256));

    // Half the upload, then the client stops.
    const url = await new Promise<string>((resolve, reject) => {
      const upload = new tus.Upload(data, {
        endpoint, chunkSize: 128 * 1024, retryDelays: [], metadata: { filename: 'notes.bin' },
        onChunkComplete: (_chunk, sent) => {
          if (sent >= 512 * 1024) void upload.abort().then(() => resolve(upload.url ?? ''));
        },
        onError: reject,
      });
      upload.start();
    });
    assert.equal((await service?.control.status())?.heldSessions, 1, "the upload's session is held in the outbox");
    const health = (await (await fetch(`http://127.0.0.1:${port}/api/storage/health`)).json()) as { outbox: { heldSessions: number; heldFiles: number } };
    assert.deepEqual([health.outbox.heldSessions, health.outbox.heldFiles], [1, 1], 'health shows the held session and its record');
    assert.match(await (await fetch(`http://127.0.0.1:${port}/metrics`)).text(), /^stowage_outbox_held_sessions 1$/m);
    await stop();

    const { line, control, storage } = await start(port, true);
    const offset = Number((await fetch(url, { method: 'HEAD', headers: { 'Tus-Resumable': '1.0.0' } })).headers.get('upload-offset'));
    assert.ok(offset >= 512 * 1024 && offset < data.length, `resumed from ${offset}`);
    const key = await new Promise<string | undefined>((resolve, reject) => {
      const upload = new tus.Upload(data, {
        endpoint, uploadUrl: url, chunkSize: 128 * 1024, retryDelays: [],
        onSuccess: ({ lastResponse }) => resolve(lastResponse.getHeader('Stowage-Object-Key')),
        onError: reject,
      });
      upload.start();
    });
    assert.match(key ?? '', /^uploads\/.+\.bin$/);
    const status = await control.status();
    assert.deepEqual([status.pending, status.heldSessions], [1, 0], 'the object is queued, the session gone');
    const got = await fetch(`http://127.0.0.1:${port}/api/objects/${key}`);
    assert.equal(got.status, 200);
    assert.equal(sha256(Buffer.from(await got.arrayBuffer())), sha256(data), 'served from the queue');
    const head = await fetch(url, { method: 'HEAD', headers: { 'Tus-Resumable': '1.0.0' } });
    assert.equal(head.headers.get('stowage-object-key'), key);

    line.down = false;
    await waitFor(async () => {
      const now = await control.status();
      return now.pending === 0 && now.heldFiles === 0;
    }, 'the object and the record delivered');
    assert.equal((await new Storage(line.inner).stat(key as string)).sha256, sha256(data));
    const record = await new TusRecords(line.inner).load(url.split('/').pop() as string, 'anonymous');
    assert.deepEqual(record.stored, { key, size: data.length }, "the backend has the upload's record");
    assert.equal((await storage.sessions.list()).length, 0);
  });
});
