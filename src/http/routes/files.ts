/**
 * Signed links of the fs and memory backends: `/files/<key>?...` made by
 * `storage.signedUrl`, verified by the same storage (`storage.verifySignedUrl`, in
 * constant time), which owns the secret. GET serves the object (with the signed
 * download name and type); PUT stores a body within the signed type and size. The
 * routes are there whether or not the storage has a secret: without one a link is
 * answered with E_CONFIG_INVALID naming the setting, not with a 404.
 */
import type { Readable } from 'node:stream';
import type { FastifyInstance } from 'fastify';
import { isStorageError, StorageError } from '../../core/errors.js';
import { createSignedUrl, SignedLinks, validateSecret, type SignedMethod, type VerifiedSignedUrl } from '../../core/signing.js';
import type { Storage } from '../../core/storage.js';
import type { WriteResult } from '../../core/types.js';
import { ERROR_RESPONSES } from '../catalogue.js';
import { sendObject } from '../serve.js';
import { sendVariant } from '../variants.js';
import { declaredSize, requestBody } from '../errors.js';
import { OBJECT_BYTES, OBJECT_HEADERS, refuseEncodedBody, replyWritten, WRITE_RESPONSES } from './objects.js';
import { refuseAmbiguousQuery, type RouteContext } from './context.js';

/** Checks a signed link for a request made with `method`, as `storage.verifySignedUrl` does. */
export type VerifyLink = (url: string, method: SignedMethod) => VerifiedSignedUrl;

/** What the signed-link routes need besides the shared settings. */
export interface SignedRouteContext extends RouteContext {
  verifyLink: VerifyLink;
}

/**
 * How the routes verify links: through the storage. The routes' own `signingSecret`
 * (deprecated) is still honoured as before: equal to the storage's, it changes
 * nothing; on a storage without a secret it verifies the links (which that storage
 * cannot issue, as before); different from the storage's, every link would be refused
 * (403), so registration fails with E_CONFIG_INVALID instead. Whether the two agree is
 * asked of the storage with a link signed by the routes' secret, so the storage's
 * secret never leaves it.
 */
export function linkVerifier(storage: Storage<WriteResult>, deprecatedSecret: string | undefined): VerifyLink {
  const byStorage: VerifyLink = (url, method) => storage.verifySignedUrl(url, method);
  if (deprecatedSecret === undefined) return byStorage;
  // Never checked here before; refused now, since a short secret lets anyone forge links.
  const secret = validateSecret(deprecatedSecret, "the HTTP routes' signingSecret option");
  const probe = createSignedUrl('stowage/secret-check', { method: 'GET', expiresIn: 3600 }, { baseUrl: 'http://secret-check.invalid', secret });
  try {
    storage.verifySignedUrl(probe.url, 'GET');
    return byStorage;
  } catch (err) {
    if (isStorageError(err, 'E_CONFIG_INVALID')) {
      const own = new SignedLinks({ signingSecret: secret });
      return (url, method) => own.verify(url, method, storage.backend);
    }
    if (!isStorageError(err, 'E_ACCESS_DENIED')) throw err;
    throw new StorageError('E_CONFIG_INVALID', "the HTTP routes' signingSecret option differs from the storage's signingSecret, so every signed link would be refused; give the secret to the storage only (STORAGE_SIGNING_SECRET) and drop the routes' option, which is deprecated");
  }
}

/** Registers the signed-link routes. */
export async function fileRoutes(app: FastifyInstance, ctx: SignedRouteContext & { variantsOnly?: boolean }): Promise<void> {
  const { storage } = ctx;
  // On a backend that signs its own links, the service issues links to image variants only:
  // a service link to anything else was not made by this storage, so it is refused.
  const verifyLink: VerifyLink = ctx.variantsOnly
    ? (url, method) => {
        const grant = ctx.verifyLink(url, method);
        if (grant.variant === undefined) throw new StorageError('E_ACCESS_DENIED', 'signed URL rejected: this service signs links to image variants only; the backend signs links to objects', { publicMessage: 'This service signs links to image variants only.' });
        return grant;
      }
    : ctx.verifyLink;

  app.get('/files/*', { exposeHeadRoute: false, schema: { response: { 200: OBJECT_BYTES, ...ERROR_RESPONSES } } }, async (request, reply) => {
    refuseAmbiguousQuery(request);
    const grant = verifyLink(request.url, 'GET');
    // A signed link's bytes are the same for whoever holds it: shared caches may keep them.
    if (grant.variant !== undefined) return sendVariant(storage, grant.key, request, reply, { head: false, name: grant.variant, shared: true });
    return sendObject(storage, grant.key, request, reply, { head: false, download: grant.download, contentType: grant.responseContentType });
  });

  app.head('/files/*', { schema: { response: { 200: OBJECT_HEADERS, ...ERROR_RESPONSES } } }, async (request, reply) => {
    refuseAmbiguousQuery(request);
    const grant = verifyLink(request.url, 'GET');
    if (grant.variant !== undefined) return sendVariant(storage, grant.key, request, reply, { head: true, name: grant.variant, shared: true });
    return sendObject(storage, grant.key, request, reply, { head: true, download: grant.download, contentType: grant.responseContentType });
  });

  if (ctx.variantsOnly) return;
  app.put<{ Body: Readable }>('/files/*', { schema: { response: { ...WRITE_RESPONSES, ...ERROR_RESPONSES } } }, async (request, reply) => {
    refuseAmbiguousQuery(request);
    const grant = verifyLink(request.url, 'PUT');
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
    return replyWritten(reply, await storage.put(grant.key, requestBody(request), { contentType: contentType || undefined, maxSize, size: declaredSize(request) }));
  });
}

/** E_ACCESS_DENIED for a request that breaks a signed link's terms, telling the client which term and what it sent. */
export function linkRefused(requirement: string, sent: string): StorageError {
  const message = `This link requires ${requirement}; the request sent ${sent.slice(0, 200)}.`;
  return new StorageError('E_ACCESS_DENIED', `signed URL rejected: ${message}`, { publicMessage: message });
}
