/**
 * Signed links of the fs and memory backends: `/files/<key>?...` made by
 * `storage.signedUrl`, verified in constant time. GET serves the object (with the signed
 * download name and type); PUT stores a body within the signed type and size.
 */
import type { FastifyInstance } from 'fastify';
import { StorageError } from '../../core/errors.js';
import { verifySignedUrl } from '../../core/signing.js';
import { sendObject } from '../serve.js';
import { requestBody } from '../errors.js';
import { objectJson, refuseEncodedBody } from './objects.js';
import type { RouteContext } from './context.js';

/** Registers the signed-link routes; needs the signing secret. */
export async function fileRoutes(app: FastifyInstance, ctx: RouteContext & { signingSecret: string }): Promise<void> {
  const { storage, signingSecret } = ctx;

  app.get('/files/*', { exposeHeadRoute: false }, async (request, reply) => {
    const grant = verifySignedUrl(request.url, { signingSecret, method: 'GET' });
    return sendObject(storage, grant.key, request, reply, { head: false, download: grant.download, contentType: grant.responseContentType });
  });

  app.head('/files/*', async (request, reply) => {
    const grant = verifySignedUrl(request.url, { signingSecret, method: 'GET' });
    return sendObject(storage, grant.key, request, reply, { head: true, download: grant.download, contentType: grant.responseContentType });
  });

  app.put('/files/*', async (request, reply) => {
    const grant = verifySignedUrl(request.url, { signingSecret, method: 'PUT' });
    refuseEncodedBody(request);
    const contentType = request.headers['content-type'];
    if (grant.contentType !== undefined && contentType !== grant.contentType) {
      throw new StorageError('E_ACCESS_DENIED', `signed URL rejected: it requires Content-Type ${grant.contentType}, got ${contentType ?? 'none'}`);
    }
    const length = request.headers['content-length'];
    if (grant.contentLength !== undefined && Number(length) !== grant.contentLength) {
      throw new StorageError('E_ACCESS_DENIED', `signed URL rejected: it requires Content-Length ${grant.contentLength}, got ${length ?? 'none'}`);
    }
    const maxSize = Math.min(grant.maxSize ?? ctx.maxUploadSize, grant.contentLength ?? ctx.maxUploadSize, ctx.maxUploadSize);
    const info = await storage.put(grant.key, requestBody(request), { contentType: contentType || undefined, maxSize });
    return reply.status(201).send(objectJson(info));
  });
}
