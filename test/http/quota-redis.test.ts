/**
 * Two service processes sharing one Redis for their quota counters (a real redis-server
 * of this test's own, two real `npm start` processes on one fs root): uploads racing
 * through both never pass a limit together, a SIGKILLed instance's write in progress
 * stops holding its reservation once its lease ends and is repaired by the other, and
 * with Redis down writes fail closed (503) while reads go on.
 */
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';
import { privateRedisServer, type PrivateRedisServer } from '../../scripts/redis-server.mjs';
import { LISTENING, runServer, slowUpload } from './helpers.js';

const RULES = JSON.stringify({ 'users/*/': { maxBytes: 10_000 } });

describe('quotas shared by two service processes through Redis', () => {
  let redis: PrivateRedisServer;
  let root: string;
  const servers: { child: ChildProcess; url: string }[] = [];

  async function start(): Promise<{ child: ChildProcess; url: string }> {
    const env = { STORAGE_LOCAL_PATH: root, STOWAGE_QUOTAS: RULES, STOWAGE_QUOTA_REDIS_URL: redis.url, STOWAGE_QUOTA_LEASE_SECONDS: '2', PORT: '0', STOWAGE_ACCESS_LOG: 'false' };
    const { output, child } = await runServer(env, LISTENING);
    const url = LISTENING.exec(output)?.[1];
    assert.ok(url, output);
    const server = { child, url };
    servers.push(server);
    return server;
  }

  before(async () => {
    redis = privateRedisServer();
    root = await mkdtemp(join(tmpdir(), 'stowage-quota-redis-'));
    await start();
    await start();
  });
  after(async () => {
    for (const { child } of servers) if (child.exitCode === null) child.kill('SIGKILL');
    redis.stop();
    await rm(root, { recursive: true, force: true });
  });

  const put = (base: string, key: string, size: number) => fetch(`${base}/api/objects/${key}`, { method: 'PUT', body: Buffer.alloc(size, 'r') }).then((r) => r.status);
  const usage = async (base: string, prefix: string) => {
    const answer = (await (await fetch(`${base}/api/usage?prefix=${prefix}`)).json()) as { quotas: { quota: string; usedBytes: number; reservedBytes: number }[] };
    return answer.quotas.find((q) => q.quota === 'users/*/');
  };

  it('lets exactly as many uploads through both instances as fit', async () => {
    const [a, b] = servers as unknown as [{ url: string }, { url: string }];
    const statuses = await Promise.all(Array.from({ length: 24 }, (_, i) => put(i % 2 === 0 ? a.url : b.url, `users/ann/${i}.bin`, 1000)));
    assert.equal(statuses.filter((s) => s === 201).length, 10, statuses.join(','));
    assert.equal(statuses.filter((s) => s === 507).length, 14);
    assert.equal((await usage(a.url, 'users/ann/'))?.usedBytes, 10_000);
    assert.equal((await usage(b.url, 'users/ann/'))?.usedBytes, 10_000);
  });

  it('frees what a SIGKILLed instance had reserved once its lease ends', async () => {
    const [a, b] = servers as unknown as [{ child: ChildProcess; url: string }, { url: string }];
    // 8000 bytes declared and sent slowly: the reservation is taken at once.
    const upload = slowUpload(a.url, 'users/bob/slow.bin', 8000, 200, 500);
    await sleep(600);
    assert.equal((await usage(b.url, 'users/bob/'))?.reservedBytes, 8000);
    assert.equal(await put(b.url, 'users/bob/other.bin', 3000), 507);
    a.child.kill('SIGKILL');
    await once(a.child, 'exit');
    assert.equal(await upload, 0);
    // The lease is 2 s; the other instance's sweep repairs the write (nothing was stored).
    await sleep(3500);
    const after = await usage(b.url, 'users/bob/');
    assert.deepEqual([after?.usedBytes ?? 0, after?.reservedBytes ?? 0], [0, 0]);
    assert.equal(await put(b.url, 'users/bob/other.bin', 3000), 201);
  });

  it('fails writes closed with 503 while Redis is down, and takes them again once it is back', async () => {
    const b = servers[1] as { url: string };
    redis.stop();
    try {
      const refused = await fetch(`${b.url}/api/objects/users/cy/a.bin`, { method: 'PUT', body: 'x' });
      assert.equal(refused.status, 503);
      assert.equal(((await refused.json()) as { error: { code: string } }).error.code, 'E_UNAVAILABLE');
      // Reads need no counter.
      assert.equal((await fetch(`${b.url}/api/objects/users/bob/other.bin`)).status, 200);
    } finally {
      redis.start();
    }
    assert.equal(await put(b.url, 'users/cy/a.bin', 10), 201);
  });
});
