/**
 * The Redis quota store and run lock on a real redis-server (the one scripts/run-tests.mjs
 * starts, or STOWAGE_TEST_REDIS_URL's): the cases every store passes, then what only a
 * shared store has: two instances racing, Redis going down and coming back, the lock,
 * and a first write that creates its fs root.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { once } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';
import { privateRedisServer } from '../../../scripts/redis-server.mjs';
import { isStorageError } from '../../../src/core/errors.js';
import { createStorage, DriverLayer, FsDriver, quotaOf, type ObjectInfo } from '../../../src/index.js';
import { RedisRunLock } from '../../../src/layers/quota/redis-lock.js';
import { RedisQuotaStore } from '../../../src/layers/quota/redis-store.js';
import { counterId, QuotaRefused } from '../../../src/layers/quota/store.js';
import { storeCases } from './store-cases.js';

/** The test Redis, or an error with the reason: these tests never skip. */
function redisUrl(): string {
  const url = process.env.STOWAGE_TEST_REDIS_URL;
  if (!url) throw new Error(process.env.STOWAGE_TEST_REDIS_ERROR ?? 'no Redis for the tests: run them with scripts/run-tests.mjs (which starts redis-server), or set STOWAGE_TEST_REDIS_URL');
  return url;
}

/** Deletes every key under `namespace`, so the shared test Redis keeps nothing of a test. */
async function dropNamespace(url: string, namespace: string): Promise<void> {
  const raw = new Redis(url);
  try {
    const keys = await raw.keys(`${namespace}*`);
    if (keys.length > 0) await raw.del(...keys);
  } finally {
    raw.disconnect();
  }
}

/** Two stores on one namespace, as two service instances, each with its own connection. */
async function twoInstances(): Promise<{ a: RedisQuotaStore; b: RedisQuotaStore; close: () => Promise<void> }> {
  const url = redisUrl();
  const namespace = `stowage-test:${randomUUID()}:`;
  const a = new RedisQuotaStore({ url, namespace });
  const b = new RedisQuotaStore({ url, namespace });
  await Promise.all([a.open(), b.open()]);
  return { a, b, close: async () => ((await Promise.all([a.close(), b.close()])), dropNamespace(url, namespace)) };
}

storeCases('RedisQuotaStore: the store contract', async () => {
  const url = redisUrl();
  const namespace = `stowage-test:${randomUUID()}:`;
  const store = new RedisQuotaStore({ url, namespace, leaseMs: 1000 });
  await store.open();
  return {
    store,
    close: async () => {
      await store.close();
      await dropNamespace(url, namespace);
    },
  };
});

const ALICE = counterId('users/*/', 'users/alice/');
const later = () => Date.now() + 3_600_000;

describe('RedisQuotaStore across instances', () => {
  it('lets exactly as many reserves through as fit when two instances race', async () => {
    const { a, b, close } = await twoInstances();
    try {
      const results = await Promise.allSettled(
        Array.from({ length: 60 }, (_, i) => (i % 2 ? a : b).reserve({ id: randomUUID(), expiresAt: later(), items: [{ counter: ALICE, bytes: 7, objects: 1, maxBytes: 100 }] })),
      );
      assert.equal(results.filter((r) => r.status === 'fulfilled').length, 14, 'floor(100 / 7)');
      assert.ok(results.every((r) => r.status === 'fulfilled' || r.reason instanceof QuotaRefused));
      assert.deepEqual((await a.read([ALICE])).get(ALICE), (await b.read([ALICE])).get(ALICE), 'both see one state');
      assert.equal((await b.read([ALICE])).get(ALICE)?.reservedBytes, 98);
    } finally {
      await close();
    }
  });

  it('holds a key against the other instance, and hands each lapsed write to one instance only', async () => {
    const { a, b, close } = await twoInstances();
    try {
      const keyed = (id: string, key: string, expiresAt: number) => ({ id, key, before: null, expiresAt, items: [{ counter: ALICE, bytes: 1, objects: 1 }] });
      assert.equal(await a.reserve(keyed('x', 'k', later())), 'ok');
      assert.equal(await b.reserve(keyed('y', 'k', later())), 'busy');
      await a.release(['x']);
      const soon = Date.now() + 200;
      for (let i = 0; i < 30; i++) await (i % 2 ? a : b).reserve(keyed(`w${i}`, `key${i}`, soon));
      await sleep(300);
      const [fromA, fromB] = await Promise.all([a.takeLapsedWrites(), b.takeLapsedWrites()]);
      const ids = [...fromA, ...fromB].map((w) => w.id).sort();
      assert.deepEqual(ids, Array.from({ length: 30 }, (_, i) => `w${i}`).sort(), 'every lapsed write, each once');
      // A restarted instance finds none left: open() answers what takeLapsedWrites would.
      assert.deepEqual(await a.open(), []);
    } finally {
      await close();
    }
  });

  it('does not hand out a lapsed write its own process settled after all', async () => {
    const { a, b, close } = await twoInstances();
    try {
      await a.reserve({ id: 'slow', key: 'k', before: null, expiresAt: Date.now() + 100, items: [{ counter: ALICE, bytes: 5, objects: 1 }] });
      await sleep(200);
      assert.deepEqual((await b.read([ALICE])).get(ALICE)?.reservedBytes, 0, 'lapsed: swept by the read');
      await a.settle(['slow'], [{ counter: ALICE, bytes: 5, objects: 1 }]);
      assert.deepEqual(await b.takeLapsedWrites(), []);
    } finally {
      await close();
    }
  });
});

describe('RedisQuotaStore: the settles of one turn go out together', () => {
  const server = privateRedisServer();
  after(() => server.stop());

  /** Script runs the server has made so far (EVAL or EVALSHA: each store call is one). */
  async function scriptRuns(): Promise<number> {
    const raw = new Redis(server.url);
    try {
      const stats = await raw.info('commandstats');
      return [...stats.matchAll(/cmdstat_eval(?:sha)?:calls=(\d+)/g)].reduce((n, m) => n + Number(m[1]), 0);
    } finally {
      raw.disconnect();
    }
  }

  it('sends the settles of one turn as one script run ahead of the next call, which sees them', async () => {
    const a = new RedisQuotaStore({ url: server.url, namespace: 'batch:' });
    const b = new RedisQuotaStore({ url: server.url, namespace: 'batch:' });
    try {
      await Promise.all([a.open(), b.open()]);
      const ids = Array.from({ length: 5 }, (_, i) => `w${i}`);
      for (const [i, id] of ids.entries()) assert.equal(await a.reserve({ id, key: `k${i}`, before: null, expiresAt: later(), items: [{ counter: ALICE, bytes: 3, objects: 1 }] }), 'ok');
      const runs = await scriptRuns();
      const settled = ids.map((id) => a.settle([id], [{ counter: ALICE, bytes: 3, objects: 1 }], [{ key: `k${ids.indexOf(id)}`, size: 3 }]));
      const read = await a.read([ALICE]);
      assert.deepEqual(read.get(ALICE), { bytes: 15, objects: 5, reservedBytes: 0, reservedObjects: 0 }, 'the read went out after the settles');
      for (const usage of await Promise.all(settled)) assert.equal(usage.get(ALICE)?.bytes, 15);
      assert.equal((await scriptRuns()) - runs, 2, 'one run for the five settles, one for the read');
      assert.deepEqual((await b.read([ALICE])).get(ALICE), read.get(ALICE), 'the other instance sees them');
      assert.equal(await b.reserve({ id: 'next', key: 'k0', before: { size: 3 }, expiresAt: later(), items: [] }), 'ok', 'the key is free again');
    } finally {
      await Promise.all([a.close(), b.close()]);
    }
  });

  it('sends a settle on its own at the end of the turn when no call follows, and one waiting on close', async () => {
    const a = new RedisQuotaStore({ url: server.url, namespace: 'alone:' });
    const b = new RedisQuotaStore({ url: server.url, namespace: 'alone:' });
    try {
      await Promise.all([a.open(), b.open()]);
      await a.reserve({ id: 'one', key: 'k1', before: null, expiresAt: later(), items: [{ counter: ALICE, bytes: 4, objects: 1 }] });
      assert.equal((await a.settle(['one'], [{ counter: ALICE, bytes: 4, objects: 1 }])).get(ALICE)?.bytes, 4);
      await a.reserve({ id: 'two', key: 'k2', before: null, expiresAt: later(), items: [{ counter: ALICE, bytes: 6, objects: 1 }] });
      const last = a.settle(['two'], [{ counter: ALICE, bytes: 6, objects: 1 }]);
      await a.close();
      assert.equal((await last).get(ALICE)?.bytes, 10);
      assert.equal((await b.read([ALICE])).get(ALICE)?.bytes, 10);
    } finally {
      await b.close();
    }
  });

  it('leaves a write whose process died before its settle went out to be repaired from its key, uncounted', async () => {
    const namespace = 'killed:';
    // The child reserves a keyed write, hands its settle to the store and dies in the same tick.
    const code = [
      `import { RedisQuotaStore } from ${JSON.stringify(new URL('../../../src/layers/quota/redis-store.ts', import.meta.url).pathname)};`,
      `const store = new RedisQuotaStore({ url: ${JSON.stringify(server.url)}, namespace: ${JSON.stringify(namespace)}, leaseMs: 300 });`,
      'await store.open();',
      `await store.reserve({ id: 'lost', key: 'photo.jpg', before: null, expiresAt: Date.now() + 300, items: [{ counter: ${JSON.stringify(ALICE)}, bytes: 9, objects: 1 }] });`,
      `void store.settle(['lost'], [{ counter: ${JSON.stringify(ALICE)}, bytes: 9, objects: 1 }]);`,
      "process.kill(process.pid, 'SIGKILL');",
    ].join('\n');
    const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', code], { stdio: ['ignore', 'inherit', 'inherit'] });
    const [, signal] = (await once(child, 'exit')) as [number | null, string | null];
    assert.equal(signal, 'SIGKILL');
    const store = new RedisQuotaStore({ url: server.url, namespace, leaseMs: 300 });
    try {
      await sleep(400);
      assert.deepEqual(await store.open(), [{ id: 'lost', key: 'photo.jpg', before: null, items: [{ counter: ALICE, bytes: 9, objects: 1 }] }], 'handed out for repair');
      assert.deepEqual((await store.read([ALICE])).get(ALICE), { bytes: 0, objects: 0, reservedBytes: 0, reservedObjects: 0 }, 'the lost settle counted nothing');
    } finally {
      await store.close();
    }
  });
});

describe('RedisQuotaStore sweeping lapsed reservations', () => {
  it('never counts a lapsed reservation, however many lapsed since the last call', async () => {
    const url = redisUrl();
    const namespace = `stowage-test:${randomUUID()}:`;
    const store = new RedisQuotaStore({ url, namespace });
    try {
      // More than one script run sweeps (200): the check must wait for every one to be swept.
      const soon = Date.now() + 400;
      await Promise.all(Array.from({ length: 450 }, (_, i) => store.reserve({ id: `r${i}`, key: `k${i}`, before: null, expiresAt: soon, items: [{ counter: ALICE, bytes: 1, objects: 1, maxBytes: 450 }] })));
      await sleep(Math.max(0, soon - Date.now()) + 50);
      assert.equal(await store.reserve({ id: 'all', expiresAt: later(), items: [{ counter: ALICE, bytes: 450, objects: 0, maxBytes: 450 }] }), 'ok');
      assert.equal((await store.takeLapsedWrites()).length, 450);
    } finally {
      await store.close();
      await dropNamespace(url, namespace);
    }
  });
});

describe('RedisQuotaStore when Redis is down', { timeout: 60_000 }, () => {
  const server = privateRedisServer();
  after(() => server.stop());
  const message = new RegExp(`^quota store \\(Redis at 127\\.0\\.0\\.1:${server.port}\\) unreachable: `);

  /** Asserts that `call` rejects with a retryable E_UNAVAILABLE within about 2 s, and returns that error's message. */
  async function unavailable(call: () => Promise<unknown>): Promise<string> {
    const started = Date.now();
    let text = '';
    await assert.rejects(call(), (err: unknown) => {
      assert.ok(isStorageError(err, 'E_UNAVAILABLE'), `expected E_UNAVAILABLE, got ${String(err)}`);
      assert.equal(err.retryable, true);
      assert.match(err.message, message);
      text = err.message;
      return true;
    });
    const took = Date.now() - started;
    assert.ok(took < 2200, `rejected after ${took} ms`);
    return text;
  }

  it('rejects every call quickly with E_UNAVAILABLE while Redis is stopped, and works again once it is back', async () => {
    const store = new RedisQuotaStore({ url: server.url, namespace: 'down:' });
    try {
      await store.settle([], [{ counter: ALICE, bytes: 1, objects: 1 }]);
      server.stop();
      await unavailable(() => store.reserve({ id: 'a', expiresAt: later(), items: [{ counter: ALICE, bytes: 1, objects: 0, maxBytes: 10 }] }));
      await unavailable(() => store.read());
      const racing = await Promise.allSettled([store.settle([], []), store.takeLapsedWrites(), store.release(['a'])]);
      assert.ok(racing.every((r) => r.status === 'rejected' && isStorageError(r.reason, 'E_UNAVAILABLE')));
      server.start();
      let back: unknown;
      for (let i = 0; i < 20 && back === undefined; i++) back = await store.read().catch(() => sleep(250).then(() => undefined));
      assert.ok(back instanceof Map, 'the store reconnects on its own within 5 s');
      // The restarted Redis has no script cached: the store loads them again.
      assert.equal(await store.reserve({ id: 'a', expiresAt: later(), items: [{ counter: ALICE, bytes: 4, objects: 0, maxBytes: 10 }] }), 'ok');
      assert.equal((await store.read([ALICE])).get(ALICE)?.reservedBytes, 4);
    } finally {
      await store.close();
    }
  });

  it('rejects quickly when Redis stops answering on an open connection, and works again once it answers', async () => {
    const store = new RedisQuotaStore({ url: server.url, namespace: 'frozen:' });
    try {
      await store.read();
      server.pause();
      try {
        await unavailable(() => store.settle([], [{ counter: ALICE, bytes: 1, objects: 1 }]));
      } finally {
        server.resume();
      }
      // The settle that timed out reached Redis and ran once it thawed: a timeout says
      // "unknown", not "not done", which is why callers never settle twice.
      assert.deepEqual((await store.read([ALICE])).get(ALICE), { bytes: 1, objects: 1, reservedBytes: 0, reservedObjects: 0 });
    } finally {
      await store.close();
    }
  });

  it('rejects quickly when Redis was never reachable, without the password in the message', async () => {
    server.stop();
    const store = new RedisQuotaStore({ url: `redis://stowage:s3cr%40t-pw@127.0.0.1:${server.port}/0` });
    const lock = new RedisRunLock(`redis://:s3cr%40t-pw@127.0.0.1:${server.port}`, 'stowage-test:lock:down');
    try {
      const text = await unavailable(() => store.open());
      assert.doesNotMatch(text, /s3cr/);
      await assert.rejects(lock.tryAcquire(1000), (err: unknown) => {
        assert.ok(isStorageError(err, 'E_UNAVAILABLE'));
        assert.match(err.message, new RegExp(`^run lock stowage-test:lock:down \\(Redis at 127\\.0\\.0\\.1:${server.port}\\) unreachable: `));
        assert.doesNotMatch(err.message, /s3cr/);
        return true;
      });
    } finally {
      await Promise.all([store.close(), lock.close()]);
      server.start();
    }
  });
});

describe('RedisRunLock', () => {
  it('lets one instance hold it at a time, goes stale after its ttl, and renews or releases only for its holder', async () => {
    const url = redisUrl();
    const name = `stowage-test:lock:${randomUUID()}`;
    const [one, two, three] = [new RedisRunLock(url, name), new RedisRunLock(url, name), new RedisRunLock(url, name)];
    try {
      const first = await one.tryAcquire(1000);
      assert.ok(first, 'a free lock is taken');
      assert.equal(await two.tryAcquire(1000), undefined, 'held by the other instance');
      assert.equal(await first.renew(), true);
      await sleep(1200);
      const second = await two.tryAcquire(5000);
      assert.ok(second, 'stale after its ttl: another instance takes it');
      assert.equal(await first.renew(), false, 'the stale holder cannot extend the new holder’s lock');
      await first.release();
      assert.equal(await three.tryAcquire(5000), undefined, 'nor release it');
      assert.equal(await second.renew(), true);
      await second.release();
      const third = await three.tryAcquire(5000);
      assert.ok(third, 'free once its holder released it');
      await third.release();
    } finally {
      await Promise.all([one.close(), two.close(), three.close()]);
    }
  });
});

describe('RedisQuotaStore under an fs root', () => {
  it('counts the first write to a root that does not exist yet (the write creates it, as without quotas)', async () => {
    const url = redisUrl();
    const namespace = `stowage-test:${randomUUID()}:`;
    const parent = await mkdtemp(join(tmpdir(), 'stowage-quota-newroot-'));
    const root = join(parent, 'not-yet');
    const storage = createStorage({ driver: 'fs', root, quotas: { rules: { 'users/*/': { maxBytes: 100 } }, store: new RedisQuotaStore({ url, namespace }), log: () => undefined } });
    try {
      await storage.put('users/ann/a.txt', Buffer.alloc(60));
      assert.equal((await storage.stat('users/ann/a.txt')).size, 60);
      const counter = (await quotaOf(storage.driver)?.counters())?.find((c) => c.prefix === 'users/ann/');
      assert.equal(counter?.usedBytes, 60);
      await assert.rejects(storage.put('users/ann/b.txt', Buffer.alloc(60)), (err) => isStorageError(err, 'E_QUOTA_EXCEEDED'));
    } finally {
      await storage.close();
      await dropNamespace(url, namespace);
      await rm(parent, { recursive: true, force: true });
    }
  });
});

describe('RedisQuotaStore with writes that stat their key (index: false)', () => {
  it('looks at the key again once it holds it, so an overwrite another instance made in between is counted exactly', async () => {
    const url = redisUrl();
    const namespace = `stowage-test:${randomUUID()}:`;
    const root = await mkdtemp(join(tmpdir(), 'stowage-quota-lookagain-'));
    const rules = { 'users/*/': { maxBytes: 1000 } };
    const key = 'users/ann/a.txt';
    const quotas = () => ({ rules, index: false, store: new RedisQuotaStore({ url, namespace }), log: () => undefined });
    const other = createStorage({ driver: 'fs', root, quotas: quotas() });
    /** The fs driver, except that its first stat of `key` lets the other instance write the key before it answers. */
    class Interleaved extends DriverLayer {
      #first = true;
      override async stat(at: string): Promise<ObjectInfo> {
        if (at !== key || !this.#first) return this.inner.stat(at);
        this.#first = false;
        // The key is missing at first: the answer is kept, error or not, until the other write is done.
        const answer = await this.inner.stat(at).then(
          (info) => ({ info }),
          (err: unknown) => ({ err }),
        );
        await other.put(key, Buffer.alloc(100));
        if ('err' in answer) throw answer.err;
        return answer.info;
      }
    }
    const storage = createStorage({ driver: new Interleaved(new FsDriver({ root })), quotas: quotas() });
    try {
      await storage.put(key, Buffer.alloc(30));
      assert.equal((await storage.stat(key)).size, 30);
      const counter = (await quotaOf(storage.driver)?.counters())?.find((c) => c.prefix === 'users/ann/');
      assert.deepEqual([counter?.usedBytes, counter?.usedObjects], [30, 1], 'the overwrite of the other instance\'s 100 bytes, not a new object');
      assert.deepEqual((await quotaOf(storage.driver)?.reconcile({ dryRun: true }))?.drift, []);
    } finally {
      await storage.close();
      await other.close();
      await dropNamespace(url, namespace);
      await rm(root, { recursive: true, force: true });
    }
  });
});
