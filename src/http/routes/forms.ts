/**
 * `POST /files/<key>?X-Stowage-...`: browser form uploads to a signed form action of
 * the fs and memory backends (`storage.presignPost` there), the counterpart of an S3
 * POST policy. The form holds exactly the fields the presign returned (today only
 * `Content-Type`, when the type was signed), each once, and then one file in the field
 * `file`, and nothing after it. The file streams to storage within the signed size
 * (413). A form that does not match what was signed is refused (400, or 403 for a type
 * other than the signed one).
 *
 * All or nothing: storage commits the file only once the whole form has been read and
 * found valid, because the body handed to storage.put ends only after the rest of the
 * form has parsed cleanly, and throws otherwise. A failed form (a second file, a field
 * after the file, a client that disconnects) therefore never touches the object that
 * was already stored under the key.
 */
import type { Multipart, MultipartFile } from '@fastify/multipart';
import type { FastifyInstance } from 'fastify';
import type { VerifiedSignedUrl } from '../../core/signing.js';
import { ERROR_RESPONSES, HttpError } from '../catalogue.js';
import { multipartFailure } from './uploads.js';
import { refuseEncodedBody, replyWritten, WRITE_RESPONSES } from './objects.js';
import { refuseAmbiguousQuery } from './context.js';
import { linkRefused, type SignedRouteContext } from './files.js';

/**
 * The fields a form for `grant` must carry: those `createSignedPost` returns for it
 * (a test checks the two agree for every kind of presign).
 */
function presignedFields(grant: VerifiedSignedUrl): ReadonlyMap<string, string> {
  return new Map(grant.contentType === undefined ? [] : [['Content-Type', grant.contentType]]);
}

/** Reads the form up to its file part, checking the fields against the presigned ones; returns the file part. */
async function fieldsThenFile(parts: AsyncIterator<Multipart>, expected: ReadonlyMap<string, string>): Promise<MultipartFile> {
  const given = new Map<string, string>();
  for (let step = await parts.next(); !step.done; step = await parts.next()) {
    const part = step.value;
    if (part.type === 'file') {
      if (part.fieldname !== 'file') throw new HttpError('E_INVALID_ARGUMENT', `the file must be in the form field "file", not ${JSON.stringify(part.fieldname)}`);
      for (const [name, value] of expected) {
        if (!given.has(name)) throw new HttpError('E_INVALID_ARGUMENT', `the form lacks the field ${JSON.stringify(name)} the presign returned; send every presigned field, before the file`);
        if (given.get(name) !== value) throw linkRefused(`${name} ${JSON.stringify(value)}`, JSON.stringify(given.get(name)));
      }
      return part;
    }
    if (!expected.has(part.fieldname)) {
      const allowed = expected.size > 0 ? [...expected.keys()].join(', ') : 'none';
      throw new HttpError('E_INVALID_ARGUMENT', `form field ${JSON.stringify(part.fieldname)} is not allowed (the presign returned: ${allowed}); send the presigned fields, then the file`);
    }
    if (given.has(part.fieldname)) throw new HttpError('E_INVALID_ARGUMENT', `form field ${JSON.stringify(part.fieldname)} is given more than once`);
    given.set(part.fieldname, String(part.value));
  }
  throw new HttpError('E_NO_FILES', 'the form holds no file');
}

/**
 * The body for storage.put: the file's bytes, then, before it ends, the rest of the
 * form, which must be empty. Whatever fails is reported to `failed` first, since
 * storage wraps errors of a body it reads.
 */
async function* fileThenEndOfForm(file: MultipartFile, parts: AsyncIterator<Multipart>, failed: (err: unknown) => void): AsyncGenerator<Buffer> {
  try {
    yield* file.file as AsyncIterable<Buffer>;
    const after = await parts.next();
    if (!after.done) {
      const part = after.value;
      // Nothing reads this part: let its bytes flow past, so the answer can go out.
      if (part.type === 'file') part.file.resume();
      throw part.type === 'file'
        ? new HttpError('E_TOO_MANY_FILES', 'a signed form takes exactly one file')
        : new HttpError('E_INVALID_ARGUMENT', `form field ${JSON.stringify(part.fieldname)} comes after the file; send the presigned fields first, then the file, and nothing after it`);
    }
  } catch (err) {
    failed(err);
    throw err;
  }
}

/** Registers the signed form route; the scope must have @fastify/multipart registered. */
export async function formRoutes(app: FastifyInstance, ctx: SignedRouteContext): Promise<void> {
  const { storage, verifyLink } = ctx;

  app.post('/files/*', { schema: { response: { ...WRITE_RESPONSES, ...ERROR_RESPONSES } } }, async (request, reply) => {
    refuseAmbiguousQuery(request);
    const grant = verifyLink(request.url, 'POST');
    refuseEncodedBody(request);
    if (!request.isMultipart()) throw new HttpError('E_UNSUPPORTED_MEDIA_TYPE', 'a signed form upload must be multipart/form-data');
    const maxSize = Math.min(grant.maxSize ?? ctx.maxUploadSize, ctx.maxUploadSize);
    // The parser's own limits sit above ours, so our clearer errors answer first.
    const parts = request.parts({ limits: { files: 2, fileSize: maxSize + 1, fields: 10, fieldSize: 1024 } })[Symbol.asyncIterator]();
    let formFailure: unknown;
    try {
      const file = await fieldsThenFile(parts, presignedFields(grant));
      const contentType = grant.contentType ?? file.mimetype;
      const body = fileThenEndOfForm(file, parts, (err) => (formFailure = err));
      return replyWritten(reply, await storage.put(grant.key, body, { contentType: contentType || undefined, maxSize }));
    } catch (err) {
      // The form's own failure, not storage's wrapping of it, is what the client is told.
      throw multipartFailure(formFailure ?? err);
    }
  });
}
