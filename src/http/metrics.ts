/**
 * `GET /metrics` in Prometheus format: requests by route and status, bytes in and out,
 * plus the storage layer's operation latencies and errors by code (layers/metrics.ts),
 * all in one registry per app. Routes are labelled by their template, never the raw
 * path, so keys cannot blow up the label set.
 */
import type { FastifyInstance } from 'fastify';
import { Counter, collectDefaultMetrics, type Registry } from 'prom-client';
import { labelled } from '../layers/metrics.js';

/** Installs the request metrics and the `/metrics` route. */
export function installMetrics(app: FastifyInstance, registry: Registry): void {
  collectDefaultMetrics({ register: registry, prefix: 'stowage_process_' });
  const requests = new Counter({ name: 'stowage_http_requests_total', help: 'HTTP requests by route and status', labelNames: ['method', 'route', 'status'], registers: [registry] });
  const bytesIn = new Counter({ name: 'stowage_http_request_bytes_total', help: 'Request body bytes received (by Content-Length)', labelNames: ['route'], registers: [registry] });
  const bytesOut = new Counter({ name: 'stowage_http_response_bytes_total', help: 'Response body bytes sent (by Content-Length)', labelNames: ['route'], registers: [registry] });

  const requestsOf = labelled(requests);
  const bytesInOf = labelled(bytesIn);
  const bytesOutOf = labelled(bytesOut);
  // A callback hook: an async one costs a promise per request, which small GETs feel.
  app.addHook('onResponse', (request, reply, done) => {
    const route = request.routeOptions.url ?? 'unmatched';
    requestsOf(request.method, route, String(reply.statusCode)).inc();
    const received = Number(request.headers['content-length']);
    if (received > 0) bytesInOf(route).inc(received);
    const sent = Number(reply.getHeader('content-length'));
    if (sent > 0 && request.method !== 'HEAD') bytesOutOf(route).inc(sent);
    done();
  });

  app.get('/metrics', { schema: { hide: true } }, async (_request, reply) => reply.type(registry.contentType).send(await registry.metrics()));
}
