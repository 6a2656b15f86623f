/**
 * Chaos R3: the S3 backend (Ceph RGW) goes down while uploads arrive at the HTTP service,
 * which has an outbox. The service runs as a real process and reaches RGW through a TCP
 * forwarder on a fixed loopback port; the outage closes that port (connections are
 * refused, as from a backend that is down), the recovery opens it again. Every upload
 * must be answered 201 or 202; after the recovery every acknowledged upload must be in
 * RGW within a bound, with the bytes and SHA-256 of the model: 0 lost, 0 corrupt. A
 * second run SIGKILLs the service once during the outage and restarts it on the same
 * outbox folder.
 *
 * Sizes: STOWAGE_CHAOS=full (npm run chaos) is 500 uploads and a 60 s outage; otherwise
 * (npm test) 60 uploads and a 5 s outage, through the same code paths.
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, connect, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';
import { createStorage, type Storage } from '../../src/index.js';
import { s3Options, s3TestEnv, uniqueBucket } from '../drivers/s3/env.js';
import { LISTENING, runServerWithin } from '../http/helpers.js';
import { waitFor } from '../layers/outbox/helpers.js';

const FULL = process.env.STOWAGE_CHAOS === 'full';
const UPLOADS = FULL ? 500 : 60;
const OUTAGE_MS = FULL ? 60_000 : 5_000;
/** How long after the recovery every acknowledged upload must be delivered and verified. */
const DELIVERY_BOUND_MS = FULL ? 180_000 : 90_000;
const CONCURRENCY = 8;

/** A TCP forwarder on a fixed loopback port: `down()` closes the port and every connection, `up()` opens it again. */
class Forwarder {
  readonly #target: { host: string; port: number };
  readonly #sockets = new Set<Socket>();
  #server: Server | undefined;
  port = 0;

  constructor(target: string) {
    const url = new URL(target);
    this.#target = { host: url.hostname, port: Number(url.port) };
  }

  async up(): Promise<void> {
    if (this.#server) return;
    const server = createServer((client) => {
      const upstream = connect(this.#target);
      for (const socket of [client, upstream]) {
        this.#sockets.add(socket);
        socket.on('close', () => this.#sockets.delete(socket));
        socket.on('error', () => socket.destroy());
      }
      client.pipe(upstream).pipe(client);
      client.on('close', () => upstream.destroy());
      upstream.on('close', () => client.destroy());
    });
    await new Promise<void>((resolve) => server.listen(this.port, '127.0.0.1', resolve));
    this.port = (server.address() as { port: number }).port;
    this.#server = server;
  }

  async down(): Promise<void> {
    const server = this.#server;
    this.#server = undefined;
    for (const socket of this.#sockets) socket.destroy();
    if (server) await new Promise((resolve) => server.close(resolve));
  }
}

/** The body of upload `i` (mostly small; every 20th past the outbox's in-memory size, through its temp file). */
function bodyOf(i: number): Buffer {
  return randomBytes(i % 20 === 7 ? 1536 * 1024 + i : 1024 + ((i * 7919) % (96 * 1024)));
}

const sha256 = (bytes: Buffer) => createHash('sha256').update(bytes).digest('hex');

describe(`chaos R3: the backend down for ${OUTAGE_MS / 1000} s while ${UPLOADS} uploads arrive (service with an outbox)`, () => {
  let forwarder: Forwarder;
  let direct: Storage;
  let bucket: string;
  const folders: string[] = [];

  before(async () => {
    const env = s3TestEnv();
    forwarder = new Forwarder(env.endpoint);
    await forwarder.up();
    bucket = uniqueBucket('chaos-r3');
    direct = createStorage({ driver: 's3', ...s3Options(bucket) });
    await direct.verify({ createBucket: true });
  });
  after(async () => {
    await forwarder.down();
    await direct.close();
    await Promise.all(folders.map((f) => rm(f, { recursive: true, force: true })));
  });

  /** Starts the service on the outbox folder `outbox`, reaching RGW through the forwarder; resolves its address and process. */
  async function startService(outbox: string) {
    const env = s3TestEnv();
    const { output, child } = await runServerWithin(
      {
        STORAGE_BACKEND: 's3',
        STORAGE_S3_BUCKET: bucket,
        STORAGE_S3_ENDPOINT_URL: `http://127.0.0.1:${forwarder.port}`,
        STORAGE_S3_ACCESS_KEY: env.accessKeyId,
        STORAGE_S3_SECRET_KEY: env.secretAccessKey,
        STORAGE_S3_REGION: env.region,
        STORAGE_S3_PROVIDER: 'ceph',
        STOWAGE_OUTBOX_DIR: outbox,
        STOWAGE_ACCESS_LOG: 'false',
        PORT: '0',
      },
      LISTENING,
      120_000,
    );
    const address = LISTENING.exec(output)?.[1];
    assert.ok(address, `the service did not start: ${output}`);
    return { address, child };
  }

  /** Uploads `indexes` to `address`, CONCURRENCY at a time; records each answer in `model` (acknowledged: 201/202). */
  async function upload(address: string, indexes: number[], model: Map<string, string>, statuses: Map<number, number>): Promise<void> {
    let next = 0;
    const worker = async () => {
      while (next < indexes.length) {
        const i = indexes[next++] as number;
        const body = bodyOf(i);
        let status = 0;
        try {
          const res = await fetch(`${address}/api/objects/r3/${i}.bin`, { method: 'PUT', body, headers: { 'content-type': 'application/octet-stream' } });
          status = res.status;
          await res.arrayBuffer();
        } catch {
          // No answer: status stays 0, counted as such.
        }
        statuses.set(status, (statuses.get(status) ?? 0) + 1);
        if (status === 201 || status === 202) model.set(`r3/${i}.bin`, sha256(body));
      }
    };
    await Promise.all(Array.from({ length: CONCURRENCY }, worker));
  }

  /** Waits until every key of the model is in RGW with its SHA-256 (checked on the bytes themselves too); returns lost and corrupt counts. */
  async function verifyDelivered(model: Map<string, string>): Promise<{ lost: number; corrupt: number; ms: number }> {
    const started = Date.now();
    const missing = new Set(model.keys());
    let corrupt = 0;
    while (missing.size > 0 && Date.now() - started < DELIVERY_BOUND_MS) {
      for (const key of [...missing]) {
        const info = await direct.stat(key).catch(() => undefined);
        if (!info) continue;
        const bytes = await direct.get(key);
        if (info.sha256 !== model.get(key) || sha256(bytes) !== model.get(key)) corrupt++;
        missing.delete(key);
      }
      if (missing.size > 0) await sleep(500);
    }
    return { lost: missing.size, corrupt, ms: Date.now() - started };
  }

  for (const killOnce of [false, true]) {
    it(killOnce ? 'the same, with the service SIGKILLed once during the outage and restarted' : 'every upload answered 201 or 202, all delivered and verified after the recovery: 0 lost, 0 corrupt', async () => {
      const outbox = await mkdtemp(join(tmpdir(), 'stowage-chaos-r3-'));
      folders.push(outbox);
      let service = await startService(outbox);
      const model = new Map<string, string>();
      const statuses = new Map<number, number>();
      const indexes = Array.from({ length: UPLOADS }, (_, i) => i + (killOnce ? UPLOADS : 0));
      try {
        await forwarder.down();
        const outageStarted = Date.now();
        if (killOnce) {
          await upload(service.address, indexes.slice(0, UPLOADS / 2), model, statuses);
          service.child.kill('SIGKILL');
          await new Promise((resolve) => service.child.once('exit', resolve));
          // Restarted while the backend is still down: it starts because it has an outbox.
          service = await startService(outbox);
          await upload(service.address, indexes.slice(UPLOADS / 2), model, statuses);
        } else {
          await upload(service.address, indexes, model, statuses);
        }
        const health = (await (await fetch(`${service.address}/api/storage/health`)).json()) as { status: string; outbox: { pending: number } };
        assert.equal(health.status, 'unavailable');
        await sleep(Math.max(0, OUTAGE_MS - (Date.now() - outageStarted)));
        const outageMs = Date.now() - outageStarted;
        await forwarder.up();
        const { lost, corrupt, ms } = await verifyDelivered(model);
        const answered = [...statuses].map(([status, count]) => `${count}x${status || 'no answer'}`).join(', ');
        console.log(`# R3${killOnce ? ' (SIGKILL + restart)' : ''}: operations ${UPLOADS}, acknowledged ${model.size} (${answered}), lost ${lost}, corrupt ${corrupt}; outage ${(outageMs / 1000).toFixed(1)} s, delivered and verified ${(ms / 1000).toFixed(1)} s after the recovery`);
        assert.deepEqual([...statuses.keys()].filter((s) => s !== 201 && s !== 202), [], `every upload answered 201 or 202 (${answered})`);
        assert.equal(model.size, UPLOADS);
        assert.equal(lost, 0, `lost uploads (not delivered within ${DELIVERY_BOUND_MS / 1000} s)`);
        assert.equal(corrupt, 0, 'corrupt uploads');
        // The service removes an entry just after it verified the object: poll for that.
        const healthNow = async () => (await (await fetch(`${service.address}/api/storage/health`)).json()) as { status: string; outbox: { pending: number; dead: number } };
        await waitFor(async () => (await healthNow()).outbox.pending === 0, 'the outbox to empty');
        const healthy = await healthNow();
        assert.equal(healthy.status, 'connected');
        assert.equal(healthy.outbox.dead, 0);
      } finally {
        service.child.kill('SIGKILL');
        await forwarder.up().catch(() => undefined);
      }
    });
  }
});
