/**
 * `GET /metrics` in Prometheus format: requests by route and status, bytes in and out,
 * plus the storage layer's operation latencies and errors by code (layers/metrics.ts),
 * all in one registry per app. Routes are labelled by their template, never the raw
 * path, so keys cannot blow up the label set.
 */
import type { FastifyInstance, FastifyReply, onRequestHookHandler } from 'fastify';
import type { ServerResponse } from 'node:http';
import { Counter, collectDefaultMetrics, type Registry } from 'prom-client';

/** The route template and Fastify reply of a response, set by the handler wrapper below. */
const ROUTE = Symbol('stowage.route');
const REPLY = Symbol('stowage.reply');
type CountedResponse = ServerResponse & { [ROUTE]?: string; [REPLY]?: FastifyReply };

/**
 * Installs the request metrics and the `/metrics` route. Call it before registering
 * routes: it labels each route's responses through a wrapper of its handler. `guard`
 * (guards.ts) decides who may read `/metrics`.
 *
 * Responses are counted on the raw response's `finish` event, not in a Fastify
 * `onResponse` hook: in Fastify 5 any such hook costs about 3 µs per request, a fifth
 * of a small GET. Requests no route matched (404, malformed URLs) are labelled
 * `unmatched`; the bytes of their short error bodies are not counted, since Fastify
 * hands their headers to Node in a form that cannot be read back.
 */
export function installMetrics(app: FastifyInstance, registry: Registry, guard?: onRequestHookHandler): void {
  collectDefaultMetrics({ register: registry, prefix: 'stowage_process_' });
  const requests = tally(registry, 'stowage_http_requests_total', 'HTTP requests by route and status', ['method', 'route', 'status']);
  const bytesIn = tally(registry, 'stowage_http_request_bytes_total', 'Request body bytes received (by Content-Length)', ['route']);
  const bytesOut = tally(registry, 'stowage_http_response_bytes_total', 'Response body bytes sent by matched routes (by Content-Length)', ['route']);

  // One shared listener (`this` is the response): no closure per request.
  function countFinished(this: CountedResponse): void {
    const route = this[ROUTE] ?? 'unmatched';
    const method = this.req.method ?? 'UNKNOWN';
    requests(1, method, route, String(this.statusCode));
    const received = Number(this.req.headers['content-length']);
    if (received > 0) bytesIn(received, route);
    const sent = Number(this[REPLY]?.getHeader('content-length'));
    if (sent > 0 && method !== 'HEAD') bytesOut(sent, route);
  }
  app.server.on('request', (_request, response: ServerResponse) => response.on('finish', countFinished));
  app.addHook('onRoute', (route) => {
    const { handler, url } = route;
    route.handler = function (request, reply) {
      const raw: CountedResponse = reply.raw;
      raw[ROUTE] = url;
      raw[REPLY] = reply;
      return handler.call(this, request, reply);
    };
  });

  app.get('/metrics', { schema: { hide: true }, onRequest: guard }, async (_request, reply) => reply.type(registry.contentType).send(await registry.metrics()));
}

/**
 * A counter whose increments add up in a plain Map and reach prom-client when the
 * registry is scraped (its `collect`). prom-client hashes and validates the labels on
 * every `inc`, even a child's, which costs more than the rest of the counting.
 * Returns `add(by, ...labelValues)`, values in `labelNames` order.
 */
function tally(registry: Registry, name: string, help: string, labelNames: string[]): (by: number, ...values: string[]) => void {
  const totals = new Map<string, { labels: Record<string, string>; total: number }>();
  new Counter({
    name,
    help,
    labelNames,
    registers: [registry],
    collect() {
      this.reset();
      for (const { labels, total } of totals.values()) this.inc(labels, total);
    },
  });
  return (by, ...values) => {
    const id = values.join('\0');
    const entry = totals.get(id);
    if (entry) entry.total += by;
    else totals.set(id, { labels: Object.fromEntries(labelNames.map((label, i) => [label, values[i] ?? ''])), total: by });
  };
}
