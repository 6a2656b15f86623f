/**
 * Liveness (`/health`) and storage health (`/api/storage/health`, 503 when the backend
 * does not answer, with an outbox too: the backend is what it reports on), plus the
 * outbox's state when one is configured, and `degraded` (still 200) while a quota is past
 * its threshold or full, naming which.
 */
import type { FastifyInstance } from 'fastify';
import { outboxOf } from '../../layers/outbox/control.js';
import { quotaOf, type QuotaCounterReport } from '../../layers/quota/control.js';
import { ERROR_RESPONSES } from '../catalogue.js';
import type { RouteContext } from './context.js';

/** The storage health answer, 200 and 503 alike (a 503 here is this, not an error answer). */
const storageHealthSchema = {
  type: 'object',
  properties: {
    status: { type: 'string', enum: ['connected', 'degraded', 'unavailable'], description: 'degraded: the backend answers, and a quota is past its threshold (see quotas)' },
    backend: { type: 'string' },
    latencyMs: { type: 'number' },
    bucket: { type: 'string' },
    code: { type: 'string', description: 'why the backend is unavailable, as a code only' },
    outbox: {
      type: 'object',
      description: 'with an outbox: writes it holds for delivery (the service accepts uploads while the backend is down, answering 202)',
      properties: { pending: { type: 'integer' }, pendingBytes: { type: 'integer' }, oldestSeconds: { type: 'number' }, dead: { type: 'integer' }, heldSessions: { type: 'integer' }, heldFiles: { type: 'integer' } },
    },
    quotas: {
      type: 'array',
      description: 'with quotas: those past their threshold (warn) or full, by pattern, with how many of its folders are',
      items: { type: 'object', properties: { quota: { type: 'string' }, level: { type: 'string', enum: ['warn', 'full'] }, folders: { type: 'integer' } } },
    },
  },
} as const;

/** The quotas past their threshold, by pattern and level: folder names stay out of a public answer. */
function pastThreshold(counters: readonly QuotaCounterReport[]): { quota: string; level: 'warn' | 'full'; folders: number }[] {
  const groups = new Map<string, { quota: string; level: 'warn' | 'full'; folders: number }>();
  for (const c of counters) {
    if (c.level === 'ok') continue;
    const id = `${c.pattern}\u0000${c.level}`;
    const group = groups.get(id) ?? { quota: c.pattern, level: c.level, folders: 0 };
    group.folders += 1;
    groups.set(id, group);
  }
  return [...groups.values()];
}

/** Registers the health routes. */
export async function healthRoutes(app: FastifyInstance, ctx: RouteContext): Promise<void> {
  app.get('/health', { schema: { response: { 200: { type: 'object', properties: { status: { type: 'string' } } }, ...ERROR_RESPONSES } } }, async () => ({ status: 'ok' }));

  app.get('/api/storage/health', { schema: { response: { 200: storageHealthSchema, 503: storageHealthSchema, ...ERROR_RESPONSES } } }, async (_request, reply) => {
    const outbox = outboxOf(ctx.storage.driver);
    // An outbox that could not open its folder fails every write already; health still answers.
    const quota = quotaOf(ctx.storage.driver);
    const [health, queued, past] = await Promise.all([ctx.storage.health(), outbox?.status().catch(() => undefined), quota?.pastThreshold().catch(() => undefined)]);
    const quotas = past && pastThreshold(past);
    const body = {
      status: !health.ok ? 'unavailable' : quotas && quotas.length > 0 ? 'degraded' : 'connected',
      backend: health.backend,
      latencyMs: health.latencyMs,
      bucket: typeof health.detail.bucket === 'string' ? health.detail.bucket : undefined,
      // The reason, as a code only: details may name hosts or paths.
      code: health.ok ? undefined : health.detail.code,
      quotas,
      outbox: queued && { pending: queued.pending, pendingBytes: queued.pendingBytes, oldestSeconds: Math.round(queued.oldestAgeSeconds), dead: queued.dead, heldSessions: queued.heldSessions, heldFiles: queued.heldFiles },
    };
    return reply.status(health.ok ? 200 : 503).send(body);
  });
}
