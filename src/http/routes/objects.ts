/**
 * Object routes: PUT (streaming raw body), GET / HEAD (ranges, 304, downloads,
 * redirects to a signed URL), DELETE, and the listing.
 */
import type { Readable } from 'node:stream';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { FromSchema } from 'json-schema-to-ts';
import { isQueued } from '../../core/objects.js';
import type { ObjectInfo, QueuedWrite, WriteResult } from '../../core/types.js';
import { ERROR_RESPONSES, HttpError } from '../catalogue.js';
import { declaredSize, requestBody } from '../errors.js';
import { keyFromUrl } from '../keys.js';
import { sendObject } from '../serve.js';
import { sendVariant } from '../variants.js';
import { guard, refuseAmbiguousQuery, type RouteContext } from './context.js';

const PREFIX = '/api/objects/';

/** The JSON form of an object's info. */
export function objectJson(info: ObjectInfo): Record<string, unknown> {
  return { ...info, lastModified: info.lastModified.toISOString() };
}

/** An object's info, as PUT answers it and the listing lists it. */
export const objectSchema = {
  type: 'object',
  properties: {
    key: { type: 'string' },
    size: { type: 'integer' },
    etag: { type: 'string' },
    sha256: { type: 'string' },
    contentType: { type: 'string' },
    lastModified: { type: 'string' },
    metadata: { type: 'object', additionalProperties: { type: 'string' } },
    cacheControl: { type: 'string' },
    contentDisposition: { type: 'string' },
  },
} as const;

/** The JSON form of a write an outbox queued (the backend was down): 202 answers it. */
export function queuedJson(queued: QueuedWrite): Record<string, unknown> {
  return { status: 'queued', key: queued.key, id: queued.id, size: queued.size, sha256: queued.sha256, queuedAt: queued.queuedAt.toISOString(), reason: queued.reason };
}

/** A write the outbox accepted while the backend was down, as 202 answers it. */
export const queuedSchema = {
  type: 'object',
  description: 'accepted, not yet stored: the backend is unavailable and the body is spooled on the service\'s disk for delivery; reads of the key serve it meanwhile',
  properties: {
    status: { type: 'string', enum: ['queued'] },
    key: { type: 'string' },
    id: { type: 'string', description: 'the outbox entry (stowage outbox status/dead)' },
    size: { type: 'integer' },
    sha256: { type: 'string' },
    queuedAt: { type: 'string' },
    reason: { type: 'string', description: 'the code the backend failed with' },
  },
} as const;

/** The responses of a single-object write: 201 stored, 202 queued by the outbox. */
export const WRITE_RESPONSES = { 201: objectSchema, 202: queuedSchema } as const;

/** Answers a single-object write: 201 with the stored object's info, or 202 when an outbox queued it. */
export function replyWritten(reply: FastifyReply, result: WriteResult): FastifyReply {
  return isQueued(result) ? reply.status(202).send(queuedJson(result)) : reply.status(201).send(objectJson(result));
}

/** A GET of an object, for the OpenAPI document (bytes are never serialized by a schema). */
export const OBJECT_BYTES = { description: "the object's bytes, in its stored type (206 for a range, 304 when unchanged)", content: { '*/*': { schema: { type: 'string', format: 'binary' } } } } as const;

/** A HEAD of an object: the headers a GET would have, no body. */
export const OBJECT_HEADERS = { description: 'the headers a GET would answer with, no body', type: 'null' } as const;

/**
 * The query of GET and HEAD on an object: each parameter one string. `variant` names an
 * image variant to serve instead (with `v`, the original's SHA-256, the response is
 * immutable). Other parameters (a cache buster such as `?v=3`) are ignored, though never
 * repeated or malformed (refuseAmbiguousQuery).
 */
const objectQuerySchema = {
  type: 'object',
  properties: {
    download: { type: 'string', minLength: 1, maxLength: 255 },
    redirect: { type: 'string', enum: ['1', 'true'] },
    variant: { type: 'string', minLength: 1, maxLength: 64, description: 'a configured image variant (e.g. thumb), served instead of the object' },
    v: { type: 'string', description: "with variant: the original's SHA-256 (the Stowage-Variant-Source header), which makes the response immutable" },
  },
} as const;

/** The query of the listing. */
const listQuerySchema = {
  type: 'object',
  properties: {
    prefix: { type: 'string' },
    delimiter: { type: 'string', minLength: 1 },
    cursor: { type: 'string' },
    limit: { type: 'integer', minimum: 1, maximum: 1000 },
  },
  // Unknown parameters are refused, not dropped: a typo (`limt`) must not list everything.
  propertyNames: { enum: ['prefix', 'delimiter', 'cursor', 'limit'] },
} as const;

type ObjectQuery = FromSchema<typeof objectQuerySchema>;

/** Refuses `download` with `variant`: a variant is an image to show, not a file to save. */
function refuseVariantDownload(q: ObjectQuery): void {
  if (q.variant !== undefined && q.download !== undefined) throw new HttpError('E_INVALID_ARGUMENT', 'variant and download cannot be combined: a variant is served to be shown');
}

/** Whether shared caches may keep what the service answers for `key`: no auth, or a public-read prefix. */
function isShared(ctx: RouteContext, key: string): boolean {
  return ctx.auth === undefined || ctx.auth.isPublic(key);
}

/** Refuses compressed request bodies (415): stored bytes must be exactly what the client meant. */
export function refuseEncodedBody(request: FastifyRequest): void {
  const encoding = request.headers['content-encoding'];
  if (encoding && encoding !== 'identity') {
    throw new HttpError('E_UNSUPPORTED_MEDIA_TYPE', `Content-Encoding ${encoding} is not accepted; send the bytes as they are`);
  }
}

/** Registers the object routes. PUT bodies arrive as raw streams (see the plugin). */
export async function objectRoutes(app: FastifyInstance, ctx: RouteContext): Promise<void> {
  const { storage } = ctx;

  app.get<{ Querystring: FromSchema<typeof listQuerySchema> }>('/api/objects', {
    schema: {
      querystring: listQuerySchema,
      response: { 200: { type: 'object', properties: { objects: { type: 'array', items: objectSchema }, prefixes: { type: 'array', items: { type: 'string' } }, cursor: { type: 'string' } } }, ...ERROR_RESPONSES },
    },
    handler: async (request) => {
      refuseAmbiguousQuery(request);
      const q = request.query;
      await guard(ctx, request, 'list', q.prefix ?? '');
      const page = await storage.list(q);
      return { ...page, objects: page.objects.map(objectJson) };
    },
  });

  app.get<{ Querystring: ObjectQuery }>(`${PREFIX}*`, {
    // HEAD has its own route, which answers from stat without opening the object.
    exposeHeadRoute: false,
    schema: { querystring: objectQuerySchema, response: { 200: OBJECT_BYTES, ...ERROR_RESPONSES } },
    handler: async (request, reply) => {
      refuseAmbiguousQuery(request);
      const key = keyFromUrl(request.url, PREFIX);
      await guard(ctx, request, 'read', key);
      const q = request.query;
      refuseVariantDownload(q);
      if (q.redirect) {
        // A redirect hands out a credential-free link: it needs what presigning needs.
        await guard(ctx, request, 'presign', key);
        const signed = await storage.signedUrl(key, { method: 'GET', expiresIn: 300, download: q.download, variant: q.variant });
        return reply.redirect(signed.url, 302);
      }
      if (q.variant !== undefined) return sendVariant(storage, key, request, reply, { head: false, name: q.variant, version: q.v, shared: isShared(ctx, key) });
      return sendObject(storage, key, request, reply, { head: false, download: q.download });
    },
  });

  app.head<{ Querystring: ObjectQuery }>(`${PREFIX}*`, {
    schema: { querystring: objectQuerySchema, response: { 200: OBJECT_HEADERS, ...ERROR_RESPONSES } },
    handler: async (request, reply) => {
      refuseAmbiguousQuery(request);
      const key = keyFromUrl(request.url, PREFIX);
      await guard(ctx, request, 'read', key);
      const q = request.query;
      refuseVariantDownload(q);
      if (q.variant !== undefined) return sendVariant(storage, key, request, reply, { head: true, name: q.variant, version: q.v, shared: isShared(ctx, key) });
      return sendObject(storage, key, request, reply, { head: true, download: q.download });
    },
  });

  app.delete(`${PREFIX}*`, { schema: { response: { 204: { description: 'deleted, or there was nothing to delete', type: 'null' }, ...ERROR_RESPONSES } } }, async (request, reply) => {
    refuseAmbiguousQuery(request);
    const key = keyFromUrl(request.url, PREFIX);
    await guard(ctx, request, 'delete', key);
    await storage.delete(key);
    return reply.status(204).send();
  });

  app.put<{ Body: Readable }>(`${PREFIX}*`, {
    schema: { response: { ...WRITE_RESPONSES, ...ERROR_RESPONSES } },
    handler: async (request, reply) => {
      refuseEncodedBody(request);
      refuseAmbiguousQuery(request);
      const key = keyFromUrl(request.url, PREFIX);
      await guard(ctx, request, 'write', key);
      const contentType = request.headers['content-type'];
      const result = await storage.put(key, requestBody(request), { contentType: contentType || undefined, maxSize: ctx.maxUploadSize, size: declaredSize(request) });
      return replyWritten(reply, result);
    },
  });
}
