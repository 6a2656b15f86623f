/**
 * `GET /metrics` in Prometheus format: requests by route and status, bytes in and out,
 * plus the storage layer's operation latencies and errors by code (layers/metrics.ts),
 * all in one registry per app. Routes are labelled by their template, never the raw
 * path, so keys cannot blow up the label set.
 */
import type { FastifyInstance } from 'fastify';
import { Counter, collectDefaultMetrics, type Registry } from 'prom-client';

/** Installs the request metrics and the `/metrics` route. */
export function installMetrics(app: FastifyInstance, registry: Registry): void {
  collectDefaultMetrics({ register: registry, prefix: 'stowage_process_' });
  const requests = new Counter({ name: 'stowage_http_requests_total', help: 'HTTP requests by route and status', labelNames: ['method', 'route', 'status'], registers: [registry] });
  const bytesIn = new Counter({ name: 'stowage_http_request_bytes_total', help: 'Request body bytes received (by Content-Length)', labelNames: ['route'], registers: [registry] });
  const bytesOut = new Counter({ name: 'stowage_http_response_bytes_total', help: 'Response body bytes sent (by Content-Length)', labelNames: ['route'], registers: [registry] });

  app.addHook('onResponse', async (request, reply) => {
    const route = request.routeOptions.url ?? 'unmatched';
    requests.inc({ method: request.method, route, status: String(reply.statusCode) });
    const received = Number(request.headers['content-length']);
    if (received > 0) bytesIn.inc({ route }, received);
    const sent = Number(reply.getHeader('content-length'));
    if (sent > 0 && request.method !== 'HEAD') bytesOut.inc({ route }, sent);
  });

  app.get('/metrics', { schema: { hide: true } }, async (_request, reply) => reply.type(registry.contentType).send(await registry.metrics()));
}
