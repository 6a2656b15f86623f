/**
 * Liveness (`/health`) and storage health (`/api/storage/health`, 503 when the backend
 * does not answer, with an outbox too: the backend is what it reports on), plus the
 * outbox's state when one is configured.
 */
import type { FastifyInstance } from 'fastify';
import { outboxOf } from '../../layers/outbox/control.js';
import { ERROR_RESPONSES } from '../catalogue.js';
import type { RouteContext } from './context.js';

/** The storage health answer, 200 and 503 alike (a 503 here is this, not an error answer). */
const storageHealthSchema = {
  type: 'object',
  properties: {
    status: { type: 'string', enum: ['connected', 'unavailable'] },
    backend: { type: 'string' },
    latencyMs: { type: 'number' },
    bucket: { type: 'string' },
    code: { type: 'string', description: 'why the backend is unavailable, as a code only' },
    outbox: {
      type: 'object',
      description: 'with an outbox: writes it holds for delivery (the service accepts uploads while the backend is down, answering 202)',
      properties: { pending: { type: 'integer' }, pendingBytes: { type: 'integer' }, oldestSeconds: { type: 'number' }, dead: { type: 'integer' } },
    },
  },
} as const;

/** Registers the health routes. */
export async function healthRoutes(app: FastifyInstance, ctx: RouteContext): Promise<void> {
  app.get('/health', { schema: { response: { 200: { type: 'object', properties: { status: { type: 'string' } } }, ...ERROR_RESPONSES } } }, async () => ({ status: 'ok' }));

  app.get('/api/storage/health', { schema: { response: { 200: storageHealthSchema, 503: storageHealthSchema, ...ERROR_RESPONSES } } }, async (_request, reply) => {
    const outbox = outboxOf(ctx.storage.driver);
    // An outbox that could not open its folder fails every write already; health still answers.
    const [health, queued] = await Promise.all([ctx.storage.health(), outbox?.status().catch(() => undefined)]);
    const body = {
      status: health.ok ? 'connected' : 'unavailable',
      backend: health.backend,
      latencyMs: health.latencyMs,
      bucket: typeof health.detail.bucket === 'string' ? health.detail.bucket : undefined,
      // The reason, as a code only: details may name hosts or paths.
      code: health.ok ? undefined : health.detail.code,
      outbox: queued && { pending: queued.pending, pendingBytes: queued.pendingBytes, oldestSeconds: Math.round(queued.oldestAgeSeconds), dead: queued.dead },
    };
    return reply.status(health.ok ? 200 : 503).send(body);
  });
}
