/**
 * `POST /files/<key>?X-Stowage-...`: browser form uploads to a signed form action of
 * the fs and memory backends (`storage.presignPost` there), the counterpart of an S3
 * POST policy. The form holds the fields the presign returned (only `Content-Type`,
 * when the type was signed) and then exactly one file in the field `file`, streamed
 * to storage within the signed size (413, nothing stored). A form that does not match
 * what was signed is refused with 403 and stores nothing.
 */
import type { FastifyInstance } from 'fastify';
import { StorageError } from '../../core/errors.js';
import { verifySignedUrl } from '../../core/signing.js';
import type { ObjectInfo } from '../../core/types.js';
import { HttpError } from '../errors.js';
import { multipartFailure } from './uploads.js';
import { objectJson, refuseEncodedBody } from './objects.js';
import type { RouteContext } from './context.js';

/** The form fields a signed form may carry besides `file`. */
const ALLOWED_FIELDS = new Set(['Content-Type']);

/** Registers the signed form route; the scope must have @fastify/multipart registered. */
export async function formRoutes(app: FastifyInstance, ctx: RouteContext & { signingSecret: string }): Promise<void> {
  const { storage, signingSecret } = ctx;

  app.post('/files/*', async (request, reply) => {
    const grant = verifySignedUrl(request.url, { signingSecret, method: 'POST' });
    refuseEncodedBody(request);
    if (!request.isMultipart()) throw new HttpError(415, 'E_UNSUPPORTED_MEDIA_TYPE', 'a signed form upload must be multipart/form-data');
    const maxSize = Math.min(grant.maxSize ?? ctx.maxUploadSize, ctx.maxUploadSize);
    const fields: Record<string, string> = {};
    let stored: ObjectInfo | undefined;
    try {
      // The parser's own limits sit one above ours, so storage's E_TOO_LARGE answers first.
      for await (const part of request.parts({ limits: { files: 2, fileSize: maxSize + 1, fields: 10, fieldSize: 1024 } })) {
        if (part.type === 'field') {
          if (!ALLOWED_FIELDS.has(part.fieldname)) throw new HttpError(400, 'E_INVALID_ARGUMENT', `form field ${JSON.stringify(part.fieldname)} is not allowed; send the fields the presign returned, then the file`);
          fields[part.fieldname] = String(part.value);
          continue;
        }
        if (part.fieldname !== 'file') throw new HttpError(400, 'E_INVALID_ARGUMENT', `the file must be in the form field "file", not ${JSON.stringify(part.fieldname)}`);
        if (stored) throw new HttpError(400, 'E_TOO_MANY_FILES', 'a signed form takes exactly one file');
        const contentType = fields['Content-Type'] ?? part.mimetype;
        if (grant.contentType !== undefined && contentType !== grant.contentType) {
          throw new StorageError('E_ACCESS_DENIED', `signed form rejected: it requires Content-Type ${grant.contentType}, got ${contentType || 'none'}`);
        }
        stored = await storage.put(grant.key, part.file, { contentType: contentType || undefined, maxSize });
      }
      if (!stored) throw new HttpError(400, 'E_NO_FILES', 'the form holds no file');
    } catch (err) {
      // A form that fails leaves nothing: a later error in the body undoes the stored file.
      if (stored) await storage.delete(grant.key).catch(() => undefined);
      throw multipartFailure(err);
    }
    return reply.status(201).send(objectJson(stored));
  });
}
