/**
 * The fault proxy's own behaviour, in front of a small loopback HTTP server that counts
 * what reaches it: pass-through and byte counters, seeded chaos at its rates (the same
 * seed gives the same faults), latency spikes, the black hole, and reset().
 */
import assert from 'node:assert/strict';
import { Agent, createServer, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { startFaultProxy, type FaultKind, type FaultProxy } from './fault-proxy.js';

/** What the target server received whole: requests and body bytes. */
const received = { requests: 0, bytes: 0 };
let target: Server;
let targetUrl: string;

before(async () => {
  target = createServer((req, res) => {
    let bytes = 0;
    req.on('data', (chunk: Buffer) => (bytes += chunk.length));
    req.on('end', () => {
      received.requests++;
      received.bytes += bytes;
      const body = req.method === 'GET' ? Buffer.alloc(4096, 7) : Buffer.from(JSON.stringify({ bytes }));
      res.writeHead(200, { 'content-length': body.length }).end(body);
    });
  });
  await new Promise<void>((resolve) => target.listen(0, '127.0.0.1', resolve));
  targetUrl = `http://127.0.0.1:${(target.address() as AddressInfo).port}`;
});
after(() => target.close());

interface Answer {
  status?: number;
  headers?: Record<string, string | string[] | undefined>;
  body?: Buffer;
  error?: Error;
}

/** One request through the proxy; resolves with the answer or the error the client saw. */
function send(proxy: FaultProxy, opts: { method?: string; body?: Buffer; agent?: Agent | false; signal?: AbortSignal } = {}): Promise<Answer> {
  return new Promise((resolve) => {
    const { body } = opts;
    const req = request(`${proxy.url}/bucket/key`, { method: opts.method ?? (body ? 'PUT' : 'GET'), agent: opts.agent ?? false, signal: opts.signal, headers: body ? { 'content-length': body.length } : {} }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks) }));
      res.on('error', (error) => resolve({ error }));
    });
    req.on('error', (error) => resolve({ error }));
    req.end(body);
  });
}

/** The fault kinds of `count` PUTs of 10 kB, one connection each, sent one after another. */
async function faultSequence(proxy: FaultProxy, count: number): Promise<FaultKind[][]> {
  for (let i = 0; i < count; i++) await send(proxy, { body: Buffer.alloc(10_000, i) });
  return proxy.seen.map((r) => r.faults);
}

describe('fault proxy', () => {
  it('passes requests through and counts the body bytes it forwarded, in all and per connection; resetCounters zeroes them', async () => {
    const proxy = await startFaultProxy(targetUrl);
    const [one, two] = [new Agent({ keepAlive: true, maxSockets: 1 }), new Agent({ keepAlive: true, maxSockets: 1 })];
    try {
      assert.equal((await send(proxy, { body: Buffer.alloc(1000), agent: one })).status, 200);
      assert.equal((await send(proxy, { body: Buffer.alloc(2000), agent: one })).status, 200);
      assert.equal((await send(proxy, { body: Buffer.alloc(500), agent: two })).status, 200);
      assert.equal(proxy.bytesForwarded, 3500);
      assert.deepEqual([...proxy.bytesByConnection().values()].sort((a, b) => a - b), [500, 3000]);
      assert.deepEqual(proxy.seen.map((r) => [r.forwardedBytes, r.upstream, r.answered, r.faulted]), [[1000, 'whole', true, false], [2000, 'whole', true, false], [500, 'whole', true, false]]);
      proxy.resetCounters();
      assert.equal(proxy.bytesForwarded, 0);
      assert.equal(proxy.bytesByConnection().size, 0);
    } finally {
      one.destroy();
      two.destroy();
      await proxy.close();
    }
  });

  it('injects resets and 503 SlowDown (with Retry-After) at their rates, the same faults for the same seed, and says how each request went', async () => {
    const proxies = await Promise.all([7, 7, 8].map(() => startFaultProxy(targetUrl)));
    try {
      const [a, b, c] = proxies as [FaultProxy, FaultProxy, FaultProxy];
      a.chaos({ seed: 7, resetRate: 0.1, slowDownRate: 0.05, retryAfterSeconds: 2 });
      b.chaos({ seed: 7, resetRate: 0.1, slowDownRate: 0.05, retryAfterSeconds: 2 });
      c.chaos({ seed: 8, resetRate: 0.1, slowDownRate: 0.05, retryAfterSeconds: 2 });
      const before = { ...received };
      const first = await faultSequence(a, 300);
      const reached = { requests: received.requests - before.requests, bytes: received.bytes - before.bytes };
      assert.deepEqual(await faultSequence(b, 300), first, 'the same seed, the same faults');
      assert.notDeepEqual(await faultSequence(c, 300), first, 'another seed, other faults');

      const counts = a.faultCounts();
      const resets = (counts['reset-before'] ?? 0) + (counts['reset-mid-body'] ?? 0) + (counts['reply-lost'] ?? 0);
      assert.ok(resets >= 15 && resets <= 50, `about 10% resets, got ${resets} of 300`);
      assert.ok((counts['reset-before'] ?? 0) > 0 && (counts['reset-mid-body'] ?? 0) > 0 && (counts['reply-lost'] ?? 0) > 0, 'resets at every point');
      assert.ok((counts['slow-down'] ?? 0) >= 5 && (counts['slow-down'] ?? 0) <= 30, `about 5% SlowDown, got ${counts['slow-down']}`);
      // What reached the server whole is exactly what the proxy says it forwarded whole.
      const whole = a.seen.filter((r) => r.upstream === 'whole');
      assert.equal(reached.requests, whole.length);
      assert.equal(reached.bytes, whole.reduce((sum, r) => sum + r.forwardedBytes, 0));
      for (const r of a.seen) {
        const kind = r.faults[0];
        if (kind === undefined) assert.deepEqual([r.upstream, r.answered, r.forwardedBytes], ['whole', true, 10_000]);
        if (kind === 'reset-before' || kind === 'slow-down') assert.deepEqual([r.upstream, r.forwardedBytes], ['none', 0]);
        if (kind === 'reset-mid-body') assert.ok(r.upstream === 'partial' && r.forwardedBytes < 10_000 && !r.answered);
        if (kind === 'reply-lost') assert.deepEqual([r.upstream, r.answered], ['whole', false], 'the server did the work, the client never heard');
      }
      a.reset();
      const slowDown = a;
      slowDown.chaos({ seed: 1, slowDownRate: 1, retryAfterSeconds: 2 });
      const answer = await send(slowDown, { body: Buffer.alloc(10) });
      assert.equal(answer.status, 503);
      assert.equal(answer.headers?.['retry-after'], '2');
      assert.match(answer.body?.toString() ?? '', /<Code>SlowDown<\/Code>/);
    } finally {
      await Promise.all(proxies.map((p) => p.close()));
    }
  });

  it('adds latency spikes per request or per connection', async () => {
    const proxy = await startFaultProxy(targetUrl);
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    try {
      proxy.chaos({ seed: 3, latency: { probability: 1, ms: 300 } });
      const start = Date.now();
      assert.equal((await send(proxy)).status, 200);
      assert.ok(Date.now() - start >= 290, 'the request waited for its spike');
      proxy.chaos({ seed: 3, latency: { probability: 0.5, ms: 50, per: 'connection' } });
      for (let i = 0; i < 6; i++) await send(proxy, { agent });
      const spiked = proxy.seen.slice(1).map((r) => r.faults.includes('latency'));
      assert.ok(spiked.every((s) => s === spiked[0]), 'one roll for the connection, the same for all its requests');
      proxy.chaos({ seed: 3, latency: { probability: 0, ms: 10_000 } });
      await send(proxy);
      assert.ok(!proxy.seen.at(-1)?.faults.includes('latency'));
    } finally {
      agent.destroy();
      await proxy.close();
    }
  });

  it('black-holes requests while it is on (nothing reaches the server, nothing answers), and resets them when switched off', async () => {
    const proxy = await startFaultProxy(targetUrl);
    try {
      proxy.blackHole(true);
      const before = received.requests;
      let settled = false;
      const held = send(proxy, { body: Buffer.alloc(100) }).finally(() => (settled = true));
      await new Promise((r) => setTimeout(r, 500));
      assert.equal(settled, false, 'no answer while the backend is down');
      assert.equal(received.requests, before, 'nothing reached the server');
      assert.deepEqual(proxy.seen.map((r) => r.faults), [['black-hole']]);
      proxy.blackHole(false);
      assert.ok((await held).error, 'the held request failed once the backend came back, so its client can retry');
      assert.equal((await send(proxy)).status, 200);
      assert.equal(received.requests, before + 1);
    } finally {
      await proxy.close();
    }
  });

  it('reset() ends chaos, the black hole, rules and counters', async () => {
    const proxy = await startFaultProxy(targetUrl);
    try {
      proxy.chaos({ seed: 1, resetRate: 1 });
      proxy.add({ match: () => true, action: { kind: 'status', status: 500, code: 'InternalError' }, times: 5 });
      proxy.blackHole(true);
      proxy.reset();
      assert.equal((await send(proxy, { body: Buffer.alloc(10) })).status, 200);
      assert.equal(proxy.bytesForwarded, 10);
      assert.throws(() => proxy.chaos({ seed: 1, resetRate: 1.5 }), /resetRate must be between 0 and 1/);
    } finally {
      await proxy.close();
    }
  });
});
