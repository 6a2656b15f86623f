/**
 * A fault-injecting HTTP proxy on loopback, in front of the real S3 server. Requests
 * pass through unchanged (the Host header too, so SigV4 signatures stay valid) unless a
 * rule matches: then the proxy answers with an S3 error status (with extra headers or
 * error-document fields, as some services add), resets the connection, or stalls a
 * response body half way. It records every request it saw, and counts the connections
 * clients hold open to it.
 */
import { createServer, request, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/** What to do with a matching request. */
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

/** A request the proxy saw. */
export interface SeenRequest {
  method: string;
  url: string;
  faulted: boolean;
  at: number;
  contentLength?: number;
  /** The request was a server-side copy (x-amz-copy-source). */
  copy: boolean;
}

/** The proxy. Create with {@link startFaultProxy}. */
export class FaultProxy {
  readonly seen: SeenRequest[] = [];
  readonly #rules: FaultRule[] = [];
  readonly #server: Server;
  readonly #target: URL;

  constructor(server: Server, target: URL) {
    this.#server = server;
    this.#target = target;
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

  /** Removes every rule and forgets the requests seen. */
  reset(): void {
    this.#rules.length = 0;
    this.seen.length = 0;
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
    const rule = this.#rules.find((r) => r.times > 0 && r.match({ method, url, query }));
    const length = req.headers['content-length'];
    this.seen.push({ method, url, faulted: rule !== undefined, at: Date.now(), contentLength: length === undefined ? undefined : Number(length), copy: req.headers['x-amz-copy-source'] !== undefined });
    if (rule) {
      rule.times--;
      this.#fault(rule.action, req, res);
      return;
    }
    this.#forward(req, res);
  }

  #fault(action: FaultAction, req: IncomingMessage, res: ServerResponse): void {
    if (action.kind === 'reset') {
      req.socket.destroy();
      return;
    }
    if (action.kind === 'hang') return; // never answer; the client's timeout must end it
    if (action.kind === 'stall-body') {
      this.#forward(req, res, action.afterBytes);
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

  #forward(req: IncomingMessage, res: ServerResponse, stallAfterBytes?: number): void {
    const upstream = request(
      { host: this.#target.hostname, port: this.#target.port, method: req.method, path: req.url, headers: req.headers },
      (up) => {
        res.writeHead(up.statusCode ?? 502, up.headers);
        if (stallAfterBytes === undefined) {
          up.pipe(res);
          return;
        }
        let sent = 0;
        up.on('data', (chunk: Buffer) => {
          if (sent >= stallAfterBytes) return; // swallow the rest: the client sees a stalled body
          const part = chunk.subarray(0, stallAfterBytes - sent);
          sent += part.length;
          res.write(part);
        });
      },
    );
    upstream.on('error', () => res.destroy());
    req.pipe(upstream);
  }

  /** Stops the proxy and drops its connections. */
  async close(): Promise<void> {
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
