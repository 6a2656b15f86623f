/**
 * `GET /api/usage?prefix=`: the quotas a folder lies in, with what is used, reserved and
 * allowed, for a caller who may list that folder. Answered from the quota counters (no
 * listing); without quotas configured, the answer lists none.
 */
import type { FastifyInstance } from 'fastify';
import type { FromSchema } from 'json-schema-to-ts';
import { StorageError } from '../../core/errors.js';
import { normalizeKey } from '../../core/keys.js';
import { quotaOf } from '../../layers/quota/control.js';
import { ERROR_RESPONSES } from '../catalogue.js';
import { guard, refuseAmbiguousQuery, type RouteContext } from './context.js';

const usageQuerySchema = {
  type: 'object',
  additionalProperties: false,
  properties: { prefix: { type: 'string', description: 'a folder: empty (the whole storage) or ending in "/"', default: '' } },
} as const;

/** One quota's counter, as the usage and health answers give it. */
export const quotaCounterSchema = {
  type: 'object',
  properties: {
    quota: { type: 'string', description: 'the quota pattern, e.g. users/*/' },
    prefix: { type: 'string', description: 'the folder the counter is for' },
    usedBytes: { type: 'integer' },
    usedObjects: { type: 'integer' },
    reservedBytes: { type: 'integer', description: 'promised to uploads in progress' },
    reservedObjects: { type: 'integer' },
    maxBytes: { type: 'integer' },
    maxObjects: { type: 'integer' },
    warnAt: { type: 'number' },
    level: { type: 'string', enum: ['ok', 'warn', 'full'] },
  },
} as const;

const usageSchema = {
  type: 'object',
  properties: { prefix: { type: 'string' }, quotas: { type: 'array', items: quotaCounterSchema } },
} as const;

/** Registers the usage route. */
export async function usageRoutes(app: FastifyInstance, ctx: RouteContext): Promise<void> {
  app.get<{ Querystring: FromSchema<typeof usageQuerySchema> }>('/api/usage', {
    schema: { querystring: usageQuerySchema, response: { 200: usageSchema, ...ERROR_RESPONSES } },
    handler: async (request) => {
      refuseAmbiguousQuery(request);
      const raw = request.query.prefix ?? '';
      if (raw !== '' && !raw.endsWith('/')) throw new StorageError('E_INVALID_ARGUMENT', `prefix ${JSON.stringify(raw)} must be a folder: empty or ending in "/"`);
      // The folder's name is checked as a key would be (no "..", no reserved area).
      const prefix = raw === '' ? '' : `${normalizeKey(raw.slice(0, -1))}/`;
      await guard(ctx, request, 'list', prefix);
      const quota = quotaOf(ctx.storage.driver);
      const quotas = quota ? await quota.usage(prefix) : [];
      return { prefix, quotas: quotas.map(({ pattern, ...counter }) => ({ quota: pattern, ...counter })) };
    },
  });
}
