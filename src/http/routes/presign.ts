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
    variant: { type: 'string', minLength: 1, maxLength: 64, description: 'GET only: a link to this image variant, served by this service on every backend' },
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
      // The quota layer checks what the backend signs itself (S3); links and forms of this
      // service are signed here, so the room left bounds them here, and the upload is
      // checked again when it arrives.
      const quota = quotaOf(ctx.storage.driver);
      const { nativePresignPost, nativeSignedUrls } = ctx.storage.capabilities;
      if (method === 'POST') {
        const maxSize = quota && !nativePresignPost ? await quota.formMaxSize(key, opts.maxSize) : opts.maxSize;
        const post = await ctx.storage.presignPost(key, { expiresIn: opts.expiresIn, contentType: opts.contentType, maxSize });
        return { url: post.url, method, fields: post.fields, expiresAt: post.expiresAt.toISOString() };
      }
      if (method === 'PUT' && !nativeSignedUrls) await quota?.checkUpload(key, opts.contentLength ?? opts.maxSize, false);
      const signed = await ctx.storage.signedUrl(key, { method, ...opts });
      return { url: signed.url, method, headers: signed.headers, expiresAt: signed.expiresAt.toISOString() };
    },
  });
}
