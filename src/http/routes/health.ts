/** Liveness (`/health`) and storage health (`/api/storage/health`, 503 when the backend does not answer). */
import type { FastifyInstance } from 'fastify';
import type { RouteContext } from './context.js';

/** Registers the health routes. */
export async function healthRoutes(app: FastifyInstance, ctx: RouteContext): Promise<void> {
  app.get('/health', { schema: { response: { 200: { type: 'object', properties: { status: { type: 'string' } } } } } }, async () => ({ status: 'ok' }));

  app.get('/api/storage/health', async (_request, reply) => {
    const health = await ctx.storage.health();
    const body = {
      status: health.ok ? 'connected' : 'unavailable',
      backend: health.backend,
      latencyMs: health.latencyMs,
      bucket: typeof health.detail.bucket === 'string' ? health.detail.bucket : undefined,
      // The reason, as a code only: details may name hosts or paths.
      code: health.ok ? undefined : health.detail.code,
    };
    return reply.status(health.ok ? 200 : 503).send(body);
  });
}
