/** `POST /api/presign`: signed URLs (GET, PUT) and POST forms for direct transfers. */
import type { FastifyInstance } from 'fastify';
import type { FromSchema } from 'json-schema-to-ts';
import { normalizeKey } from '../../core/keys.js';
import { quotaOf } from '../../layers/quota/control.js';
import { ERROR_RESPONSES } from '../catalogue.js';
import { guard, type RouteContext } from './context.js';

/** What a presign asks for; the handler's type is derived from it. */
const presignBodySchema = {
  type: 'object',
  required: ['key', 'method'],
  additionalProperties: false,
  properties: {
    key: { type: 'string', minLength: 1 },
    method: { type: 'string', enum: ['GET', 'PUT', 'POST'] },
    expiresIn: { type: 'integer', minimum: 1, maximum: 604800 },
    contentType: { type: 'string' },
    maxSize: { type: 'integer', minimum: 0 },
    contentLength: { type: 'integer', minimum: 0 },
    download: { type: 'string', minLength: 1, maxLength: 255 },
    responseContentType: { type: 'string', minLength: 1, maxLength: 255 },
  },
} as const;

/** A presign's answer: a URL (with the headers to send), or a form action with its fields. */
const presignedSchema = {
  type: 'object',
  properties: {
    url: { type: 'string' },
    method: { type: 'string', enum: ['GET', 'PUT', 'POST'] },
    headers: { type: 'object', additionalProperties: { type: 'string' } },
    fields: { type: 'object', additionalProperties: { type: 'string' } },
    expiresAt: { type: 'string' },
  },
} as const;

/** Registers the presign route. */
export async function presignRoutes(app: FastifyInstance, ctx: RouteContext): Promise<void> {
  app.post<{ Body: FromSchema<typeof presignBodySchema> }>('/api/presign', {
    schema: { body: presignBodySchema, response: { 200: presignedSchema, ...ERROR_RESPONSES } },
    handler: async (request) => {
      const { key: rawKey, method, ...opts } = request.body;
      const key = normalizeKey(rawKey);
      await guard(ctx, request, 'presign', key);
      await guard(ctx, request, method === 'GET' ? 'read' : 'write', key);
      const quota = quotaOf(ctx.storage.driver);
      if (method === 'POST') {
        // A form's size range is capped by the room left, so the backend itself refuses more.
        const room = await quota?.room(key);
        if (room === 0) await quota?.checkUpload(key, 1, false);
        const maxSize = room === undefined ? opts.maxSize : Math.min(opts.maxSize ?? room, room);
        const post = await ctx.storage.presignPost(key, { expiresIn: opts.expiresIn, contentType: opts.contentType, maxSize });
        return { url: post.url, method, fields: post.fields, expiresAt: post.expiresAt.toISOString() };
      }
      // A link to S3 is never seen again, so it must state a size that fits; one to this
      // service is checked again when the upload arrives.
      if (method === 'PUT') await quota?.checkUpload(key, opts.contentLength ?? opts.maxSize, ctx.storage.capabilities.nativeSignedUrls);
      const signed = await ctx.storage.signedUrl(key, { method, ...opts });
      return { url: signed.url, method, headers: signed.headers, expiresAt: signed.expiresAt.toISOString() };
    },
  });
}
