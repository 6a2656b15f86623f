/**
 * A fault-injecting HTTP proxy on loopback, in front of the real S3 server (or any HTTP
 * server). Requests pass through unchanged (the Host header too, so SigV4 signatures stay
 * valid) unless something says otherwise:
 *
 * - rules ({@link FaultProxy.add}) match chosen requests a number of times: an S3 error
 *   status (with extra headers or error-document fields, as some services add), a reset, a
 *   request that is never answered, or a response body that stalls half way;
 * - chaos ({@link FaultProxy.chaos}) hits any request at seeded rates: resets at a random
 *   point of the exchange, 503 SlowDown with Retry-After, latency spikes;
 * - a black hole ({@link FaultProxy.blackHole}) takes the backend "down": requests are
 *   accepted and never answered until it is switched off.
 *
 * It records every request it saw and how it went (whether the request reached the
 * server whole, whether its answer reached the client), counts the request-body bytes it
 * forwarded upstream (in all and per client connection), and counts the connections
 * clients hold open to it.
 */
import { createServer, request, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { seededRandom } from '../../../src/layers/faults.js';

/** What to do with a request a rule matches. */
export type FaultAction =
  | { kind: 'status'; status: number; code: string; retryAfterSeconds?: number; headers?: Record<string, string>; fields?: Record<string, string> }
  | { kind: 'reset' }
  | { kind: 'hang' }
  | { kind: 'stall-body'; afterBytes: number };

/** A rule: requests it matches get `action`, `times` times (then pass through). */
export interface FaultRule {
  match: (req: { method: string; url: string; query: URLSearchParams }) => boolean;
  action: FaultAction;
  times: number;
}

/** Seeded faults at rates, on every request; see {@link FaultProxy.chaos}. */
export interface ChaosOptions {
  /** The same seed and the same requests in the same order give the same faults. */
  seed: number;
  /**
   * Chance per request of a reset, at a point picked at random: before the request is
   * forwarded, half way through its body (or, for a request without one, its response's
   * body), or once the server has answered (the request took effect, the reply is lost).
   */
  resetRate?: number;
  /** Chance per request of a 503 SlowDown answered without forwarding. */
  slowDownRate?: number;
  /** The Retry-After header of those 503s, in seconds (default 1). */
  retryAfterSeconds?: number;
  /** Latency spikes: this chance of `ms` of added delay, rolled per request or once per client connection. */
  latency?: { probability: number; ms: number; per?: 'request' | 'connection' };
}

/** Why a request did not simply pass through. */
export type FaultKind = FaultAction['kind'] | 'slow-down' | 'reset-before' | 'reset-mid-body' | 'reply-lost' | 'latency' | 'black-hole';

/** A request the proxy saw. */
export interface SeenRequest {
  /** Its position among the requests seen since the last {@link FaultProxy.reset}. */
  seq: number;
  method: string;
  url: string;
  /** `url` without its query. */
  path: string;
  /** A rule or chaos fault (other than latency) was applied to it. */
  faulted: boolean;
  /** The faults applied, in order. */
  faults: FaultKind[];
  at: number;
  contentLength?: number;
  /** The request was a server-side copy (x-amz-copy-source). */
  copy: boolean;
  /** The client connection it came on (numbered from 1). */
  connection: number;
  /** Request-body bytes forwarded upstream. */
  forwardedBytes: number;
  /** How much of the request reached the server: none, part (then it was cut), or all of it. */
  upstream: 'none' | 'partial' | 'whole';
  /** The server's status code, once it answered. */
  upstreamStatus?: number;
  /** The whole answer was written to the client. */
  answered: boolean;
}

/** What the forwarder does besides passing bytes on. */
interface ForwardPlan {
  cutRequestAt?: number;
  cutResponseAt?: number;
  stallAfterBytes?: number;
  loseReply?: boolean;
}

/** The proxy. Create with {@link startFaultProxy}. */
export class FaultProxy {
  readonly seen: SeenRequest[] = [];
  readonly #rules: FaultRule[] = [];
  readonly #server: Server;
  readonly #target: URL;
  readonly #connectionIds = new WeakMap<Socket, number>();
  /** Per connection: whether its latency spike was rolled in (for `per: 'connection'`). */
  readonly #slowConnections = new WeakMap<Socket, boolean>();
  #connections = 0;
  #bytesTotal = 0;
  #bytesByConnection = new Map<number, number>();
  #chaos: (ChaosOptions & { random: () => number }) | undefined;
  /** Requests held by the black hole while it is on. */
  #held: Set<IncomingMessage> | undefined;

  constructor(server: Server, target: URL) {
    this.#server = server;
    this.#target = target;
    server.on('connection', (socket: Socket) => this.#connectionIds.set(socket, ++this.#connections));
  }

  /** The proxy's base URL. */
  get url(): string {
    const { port } = this.#server.address() as AddressInfo;
    return `http://127.0.0.1:${port}`;
  }

  /** Adds a rule, checked before earlier ones. */
  add(rule: FaultRule): void {
    this.#rules.unshift(rule);
  }

  /** Back to a clean pass-through: no rules, no chaos, no black hole (held requests are reset); forgets the requests seen and zeroes the byte counters. */
  reset(): void {
    this.#rules.length = 0;
    this.seen.length = 0;
    this.clean();
    this.resetCounters();
  }

  /** Turns on seeded faults at rates for every request (replacing earlier chaos options). */
  chaos(options: ChaosOptions): void {
    for (const [name, rate] of Object.entries({ resetRate: options.resetRate, slowDownRate: options.slowDownRate, 'latency.probability': options.latency?.probability })) {
      if (rate !== undefined && !(rate >= 0 && rate <= 1)) throw new RangeError(`chaos ${name} must be between 0 and 1, got ${rate}`);
    }
    this.#chaos = { ...options, random: seededRandom(options.seed) };
  }

  /** Turns chaos and the black hole off: requests from now on pass through (rules still apply). */
  clean(): void {
    this.#chaos = undefined;
    this.blackHole(false);
  }

  /**
   * Takes the backend "down" (`true`): every request from now on is accepted and never
   * answered. Switching it off brings the backend back; the requests it held are reset,
   * as connections that died during the outage, so their clients retry at once.
   */
  blackHole(on: boolean): void {
    if (on) {
      this.#held ??= new Set();
      return;
    }
    for (const req of this.#held ?? []) req.socket.destroy();
    this.#held = undefined;
  }

  /** Request-body bytes forwarded upstream since the counters were last reset. */
  get bytesForwarded(): number {
    return this.#bytesTotal;
  }

  /** The same, per client connection (by the `connection` number of {@link SeenRequest}). */
  bytesByConnection(): Map<number, number> {
    return new Map(this.#bytesByConnection);
  }

  /** Zeroes the byte counters (the `forwardedBytes` of requests already seen stay). */
  resetCounters(): void {
    this.#bytesTotal = 0;
    this.#bytesByConnection = new Map();
  }

  /** How many requests got each kind of fault. */
  faultCounts(): Partial<Record<FaultKind, number>> {
    const counts: Partial<Record<FaultKind, number>> = {};
    for (const kind of this.seen.flatMap((r) => r.faults)) counts[kind] = (counts[kind] ?? 0) + 1;
    return counts;
  }

  /** How many client connections are open now. */
  openConnections(): Promise<number> {
    return new Promise((resolve, reject) => this.#server.getConnections((err, count) => (err ? reject(err) : resolve(count))));
  }

  /** Requests seen whose method and path match. */
  count(method: string, pathIncludes = ''): number {
    return this.seen.filter((r) => r.method === method && r.url.includes(pathIncludes)).length;
  }

  handle(req: IncomingMessage, res: ServerResponse): void {
    const method = req.method ?? 'GET';
    const url = req.url ?? '/';
    const query = new URL(url, 'http://x').searchParams;
    const length = req.headers['content-length'];
    const seen: SeenRequest = {
      seq: this.seen.length, method, url, path: url.split('?')[0] ?? url, faulted: false, faults: [], at: Date.now(),
      contentLength: length === undefined ? undefined : Number(length), copy: req.headers['x-amz-copy-source'] !== undefined,
      connection: this.#connectionIds.get(req.socket) ?? 0, forwardedBytes: 0, upstream: 'none', answered: false,
    };
    this.seen.push(seen);
    res.once('finish', () => (seen.answered = true));
    const fault = (kind: FaultKind) => {
      seen.faults.push(kind);
      if (kind !== 'latency') seen.faulted = true;
    };
    if (this.#held) {
      fault('black-hole');
      this.#hold(req);
      return;
    }
    const rule = this.#rules.find((r) => r.times > 0 && r.match({ method, url, query }));
    if (rule) {
      rule.times--;
      fault(rule.action.kind);
      this.#fault(rule.action, req, res, seen);
      return;
    }
    const chaos = this.#chaos;
    if (!chaos) return this.#forward(req, res, seen, {});
    void this.#chaotic(chaos, req, res, seen, fault);
  }

  /** Applies the chaos options to one request: every roll happens before any wait, so the sequence of choices follows the order of arrival. */
  async #chaotic(chaos: ChaosOptions & { random: () => number }, req: IncomingMessage, res: ServerResponse, seen: SeenRequest, fault: (kind: FaultKind) => void): Promise<void> {
    const { random, latency } = chaos;
    let slow = false;
    if (latency && latency.per === 'connection') {
      if (!this.#slowConnections.has(req.socket)) this.#slowConnections.set(req.socket, random() < latency.probability);
      slow = this.#slowConnections.get(req.socket) ?? false;
    } else if (latency) slow = random() < latency.probability;
    const reset = random() < (chaos.resetRate ?? 0);
    const slowDown = !reset && random() < (chaos.slowDownRate ?? 0);
    const phase = reset ? Math.floor(random() * 3) : -1;
    const fraction = random();
    if (slow && latency) {
      fault('latency');
      await sleep(latency.ms);
      if (req.socket.destroyed) return; // the client gave up meanwhile: nothing to forward
    }
    if (slowDown) {
      fault('slow-down');
      return this.#fault({ kind: 'status', status: 503, code: 'SlowDown', retryAfterSeconds: chaos.retryAfterSeconds ?? 1 }, req, res, seen);
    }
    if (phase === 0) {
      fault('reset-before');
      return void req.socket.destroy();
    }
    if (phase === 1) {
      fault('reset-mid-body');
      const hasBody = (seen.contentLength ?? 0) > 0;
      return this.#forward(req, res, seen, hasBody ? { cutRequestAt: Math.floor(fraction * (seen.contentLength ?? 0)) } : { cutResponseAt: fraction });
    }
    if (phase === 2) fault('reply-lost');
    this.#forward(req, res, seen, { loseReply: phase === 2 });
  }

  /** Keeps a request unanswered until the black hole is switched off (or the client gives up). */
  #hold(req: IncomingMessage): void {
    const held = this.#held;
    held?.add(req);
    req.socket.once('close', () => held?.delete(req));
  }

  #fault(action: FaultAction, req: IncomingMessage, res: ServerResponse, seen: SeenRequest): void {
    if (action.kind === 'reset') {
      req.socket.destroy();
      return;
    }
    if (action.kind === 'hang') return; // never answer; the client's timeout must end it
    if (action.kind === 'stall-body') {
      this.#forward(req, res, seen, { stallAfterBytes: action.afterBytes });
      return;
    }
    // Drain the request body first, as a real server would, then answer.
    req.resume();
    req.once('end', () => {
      const headers: Record<string, string> = { 'content-type': 'application/xml', ...action.headers };
      if (action.retryAfterSeconds !== undefined) headers['retry-after'] = String(action.retryAfterSeconds);
      res.writeHead(action.status, headers);
      // Extra fields are members of the error document, as AWS adds to some errors (InvalidRange: ActualObjectSize).
      const fields = Object.entries(action.fields ?? {}).map(([name, value]) => `<${name}>${value}</${name}>`).join('');
      res.end(`<?xml version="1.0" encoding="UTF-8"?><Error><Code>${action.code}</Code><Message>injected by the test proxy</Message>${fields}<RequestId>fault</RequestId></Error>`);
    });
  }

  /** Counts `bytes` forwarded upstream for `seen`. */
  #count(seen: SeenRequest, bytes: number): void {
    seen.forwardedBytes += bytes;
    this.#bytesTotal += bytes;
    this.#bytesByConnection.set(seen.connection, (this.#bytesByConnection.get(seen.connection) ?? 0) + bytes);
  }

  #forward(req: IncomingMessage, res: ServerResponse, seen: SeenRequest, plan: ForwardPlan): void {
    const upstream = request(
      { host: this.#target.hostname, port: this.#target.port, method: req.method, path: req.url, headers: req.headers },
      (up) => {
        seen.upstreamStatus = up.statusCode;
        if (plan.loseReply) {
          // The server did the work; the client never hears of it.
          up.resume();
          up.once('end', () => req.socket.destroy());
          return;
        }
        res.writeHead(up.statusCode ?? 502, up.headers);
        const length = Number(up.headers['content-length'] ?? 0);
        const limit = plan.stallAfterBytes ?? (plan.cutResponseAt !== undefined ? Math.floor(plan.cutResponseAt * length) : undefined);
        if (limit === undefined) return void up.pipe(res);
        let sent = 0;
        const cutNow = () => (plan.stallAfterBytes === undefined ? req.socket.destroy() : undefined); // a stall swallows the rest; a cut resets
        if (limit === 0) cutNow();
        up.on('data', (chunk: Buffer) => {
          if (sent >= limit) return;
          const part = chunk.subarray(0, limit - sent);
          sent += part.length;
          res.write(part);
          if (sent >= limit) cutNow();
        });
        up.once('end', () => (sent < limit ? res.end() : undefined));
      },
    );
    upstream.on('error', () => res.destroy());
    // A client that goes away takes its upstream request with it, as a dropped connection would.
    res.once('close', () => (seen.answered ? undefined : upstream.destroy()));
    req.on('data', (chunk: Buffer) => {
      const cutAt = plan.cutRequestAt;
      if (cutAt !== undefined && seen.forwardedBytes + chunk.length >= cutAt) {
        const part = chunk.subarray(0, cutAt - seen.forwardedBytes);
        this.#count(seen, part.length);
        seen.upstream = 'partial';
        req.pause();
        const cut = () => {
          upstream.destroy();
          req.socket.destroy();
        };
        if (part.length === 0) cut();
        else upstream.write(part, cut);
        return;
      }
      this.#count(seen, chunk.length);
      if (!upstream.write(chunk)) {
        req.pause();
        upstream.once('drain', () => req.resume());
      }
    });
    req.once('end', () => {
      if (seen.upstream === 'partial') return;
      seen.upstream = 'whole';
      upstream.end();
    });
  }

  /** Stops the proxy and drops its connections. */
  async close(): Promise<void> {
    this.#held = undefined;
    this.#server.closeAllConnections();
    await new Promise((resolve) => this.#server.close(resolve));
  }
}

/**
 * Starts a proxy on a free loopback port in front of `target`. `keepAliveTimeoutMs`
 * keeps idle client connections open that long (Node's default is 5 s), for tests that
 * watch who closes them.
 */
export async function startFaultProxy(target: string, opts: { keepAliveTimeoutMs?: number } = {}): Promise<FaultProxy> {
  const server = createServer((req, res) => proxy.handle(req, res));
  if (opts.keepAliveTimeoutMs !== undefined) server.keepAliveTimeout = opts.keepAliveTimeoutMs;
  const proxy = new FaultProxy(server, new URL(target));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return proxy;
}
