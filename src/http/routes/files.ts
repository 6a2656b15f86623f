/**
 * Signed links of the fs and memory backends: `/files/<key>?...` made by
 * `storage.signedUrl`, verified in constant time. GET serves the object (with the signed
 * download name and type); PUT stores a body within the signed type and size.
 */
import type { Readable } from 'node:stream';
import type { FastifyInstance } from 'fastify';
import { StorageError } from '../../core/errors.js';
import { verifySignedUrl } from '../../core/signing.js';
import { ERROR_RESPONSES } from '../catalogue.js';
import { sendObject } from '../serve.js';
import { requestBody } from '../errors.js';
import { OBJECT_BYTES, OBJECT_HEADERS, objectJson, objectSchema, refuseEncodedBody } from './objects.js';
import { refuseAmbiguousQuery, type RouteContext } from './context.js';

/** Registers the signed-link routes; needs the signing secret. */
export async function fileRoutes(app: FastifyInstance, ctx: RouteContext & { signingSecret: string }): Promise<void> {
  const { storage, signingSecret } = ctx;

  app.get('/files/*', { exposeHeadRoute: false, schema: { response: { 200: OBJECT_BYTES, ...ERROR_RESPONSES } } }, async (request, reply) => {
    refuseAmbiguousQuery(request);
    const grant = verifySignedUrl(request.url, { signingSecret, method: 'GET' });
    return sendObject(storage, grant.key, request, reply, { head: false, download: grant.download, contentType: grant.responseContentType });
  });

  app.head('/files/*', { schema: { response: { 200: OBJECT_HEADERS, ...ERROR_RESPONSES } } }, async (request, reply) => {
    refuseAmbiguousQuery(request);
    const grant = verifySignedUrl(request.url, { signingSecret, method: 'GET' });
    return sendObject(storage, grant.key, request, reply, { head: true, download: grant.download, contentType: grant.responseContentType });
  });

  app.put<{ Body: Readable }>('/files/*', { schema: { response: { 201: objectSchema, ...ERROR_RESPONSES } } }, async (request, reply) => {
    refuseAmbiguousQuery(request);
    const grant = verifySignedUrl(request.url, { signingSecret, method: 'PUT' });
    refuseEncodedBody(request);
    const contentType = request.headers['content-type'];
    // The link's own terms are no secret (they are in its URL): the refusal names them.
    if (grant.contentType !== undefined && contentType !== grant.contentType) {
      throw linkRefused(`Content-Type ${JSON.stringify(grant.contentType)}`, contentType === undefined ? 'none' : JSON.stringify(contentType));
    }
    const length = request.headers['content-length'];
    if (grant.contentLength !== undefined && Number(length) !== grant.contentLength) {
      throw linkRefused(`Content-Length ${grant.contentLength}`, length ?? 'none');
    }
    const maxSize = Math.min(grant.maxSize ?? ctx.maxUploadSize, grant.contentLength ?? ctx.maxUploadSize, ctx.maxUploadSize);
    const info = await storage.put(grant.key, requestBody(request), { contentType: contentType || undefined, maxSize });
    return reply.status(201).send(objectJson(info));
  });
}

/** E_ACCESS_DENIED for a request that breaks a signed link's terms, telling the client which term and what it sent. */
export function linkRefused(requirement: string, sent: string): StorageError {
  const message = `This link requires ${requirement}; the request sent ${sent.slice(0, 200)}.`;
  return new StorageError('E_ACCESS_DENIED', `signed URL rejected: ${message}`, { publicMessage: message });
}
