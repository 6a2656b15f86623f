/** `POST /api/presign`: signed URLs (GET, PUT) and POST forms for direct transfers. */
import type { FastifyInstance } from 'fastify';
import { normalizeKey } from '../../core/keys.js';
import { guard, type RouteContext } from './context.js';

interface PresignBody {
  key: string;
  method: 'GET' | 'PUT' | 'POST';
  expiresIn?: number;
  contentType?: string;
  maxSize?: number;
  contentLength?: number;
  download?: string;
  responseContentType?: string;
}

/** Registers the presign route. */
export async function presignRoutes(app: FastifyInstance, ctx: RouteContext): Promise<void> {
  app.post('/api/presign', {
    schema: {
      body: {
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
      },
    },
    handler: async (request) => {
      const { key: rawKey, method, ...opts } = request.body as PresignBody;
      const key = normalizeKey(rawKey);
      await guard(ctx, request, 'presign', key);
      await guard(ctx, request, method === 'GET' ? 'read' : 'write', key);
      if (method === 'POST') {
        const post = await ctx.storage.presignPost(key, { expiresIn: opts.expiresIn, contentType: opts.contentType, maxSize: opts.maxSize });
        return { url: post.url, method, fields: post.fields, expiresAt: post.expiresAt.toISOString() };
      }
      const signed = await ctx.storage.signedUrl(key, { method, ...opts });
      return { url: signed.url, method, headers: signed.headers, expiresAt: signed.expiresAt.toISOString() };
    },
  });
}
