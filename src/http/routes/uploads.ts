/**
 * `POST /api/uploads?template=<name>`: multipart/form-data browser uploads, streamed
 * part by part (never buffered whole). Each file gets a key from the named server-side
 * template (`{userId}` is the caller's identity, `{uuid}`, `{ext}` from the detected
 * type), never from the client's file name. The template's policy limits size (while
 * streaming: 413, nothing stored), types (by magic bytes; the claimed Content-Type is not
 * trusted: 415), the number of files, and file names. A request that fails stores nothing.
 */
import type { FastifyInstance } from 'fastify';
import { fileTypeFromBuffer } from 'file-type';
import { z } from 'zod';
import { StorageError } from '../../core/errors.js';
import { encodeKeyPath, keyTemplate, type KeyTemplate } from '../../core/keys.js';
import type { ObjectInfo } from '../../core/types.js';
import { UnauthenticatedError } from '../auth.js';
import { HttpError } from '../errors.js';
import { guard, type RouteContext } from './context.js';
import { refuseEncodedBody } from './objects.js';

const policySchema = z.object({
  /** The key template, e.g. `user_photos/{userId}/{uuid}.{ext}`. */
  template: z.string().min(1),
  /** Largest file in bytes. */
  maxSize: z.number().int().positive(),
  /** Allowed MIME types, as detected from the bytes. */
  allowedTypes: z.array(z.string().regex(/^[\w.+-]+\/[\w.+-]+$/)).min(1),
  /** Most files in one request (default 10). */
  maxFiles: z.number().int().positive().default(10),
  /** Longest client file name, in characters (default 255). */
  maxFileNameLength: z.number().int().positive().default(255),
});

/** Upload templates by name, as in STOWAGE_UPLOAD_POLICIES. */
export type UploadPolicies = Record<string, z.input<typeof policySchema>>;

interface CompiledPolicy {
  template: KeyTemplate;
  maxSize: number;
  allowedTypes: ReadonlySet<string>;
  maxFiles: number;
  maxFileNameLength: number;
}

/** Checks the policies; a bad one fails at start-up with E_CONFIG_INVALID naming it. */
export function compilePolicies(policies: UploadPolicies, source = 'upload policies'): Map<string, CompiledPolicy> {
  const compiled = new Map<string, CompiledPolicy>();
  for (const [name, raw] of Object.entries(policies)) {
    const parsed = policySchema.safeParse(raw);
    if (!parsed.success) {
      throw new StorageError('E_CONFIG_INVALID', `invalid ${source}: ${name}: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);
    }
    const p = parsed.data;
    let template: KeyTemplate;
    try {
      template = keyTemplate(p.template);
    } catch (err) {
      throw new StorageError('E_CONFIG_INVALID', `invalid ${source}: ${name}: ${(err as Error).message}`);
    }
    compiled.set(name, { template, maxSize: p.maxSize, allowedTypes: new Set(p.allowedTypes), maxFiles: p.maxFiles, maxFileNameLength: p.maxFileNameLength });
  }
  return compiled;
}

/** Magic numbers of every format file-type knows fit in this many bytes. */
const SNIFF_BYTES = 4100;
// eslint-disable-next-line no-control-regex
const BAD_FILE_NAME = /[\u0000-\u001f\u007f/\\]/;

/** Reads the first bytes of a stream and returns them with an iterable of the whole stream. */
async function sniff(stream: AsyncIterable<Uint8Array>): Promise<{ head: Buffer; body: AsyncIterable<Uint8Array> }> {
  const iterator = stream[Symbol.asyncIterator]();
  const chunks: Buffer[] = [];
  let size = 0;
  while (size < SNIFF_BYTES) {
    const step = await iterator.next();
    if (step.done) break;
    chunks.push(Buffer.from(step.value));
    size += step.value.byteLength;
  }
  const head = Buffer.concat(chunks);
  async function* body() {
    if (head.length > 0) yield head;
    for (let step = await iterator.next(); !step.done; step = await iterator.next()) yield step.value;
  }
  return { head, body: body() };
}

/**
 * The error to answer a failed multipart request with: errors that already say what
 * went wrong as they are; anything else from the form parser means a malformed body.
 */
export function multipartFailure(err: unknown): unknown {
  const known = err instanceof StorageError || err instanceof HttpError || err instanceof UnauthenticatedError || (typeof err === 'object' && err !== null && 'statusCode' in err);
  return known ? err : new HttpError(400, 'E_MALFORMED_MULTIPART', `the multipart body could not be read: ${(err as Error).message}`);
}

/** Registers the upload route (only when policies are configured). */
export async function uploadRoutes(app: FastifyInstance, ctx: RouteContext & { policies: Map<string, CompiledPolicy> }): Promise<void> {
  app.post('/api/uploads', {
    schema: { querystring: { type: 'object', required: ['template'], properties: { template: { type: 'string' } } } },
    handler: async (request, reply) => {
      const { template: name } = request.query as { template: string };
      const policy = ctx.policies.get(name);
      if (!policy) throw new StorageError('E_INVALID_ARGUMENT', `unknown upload template ${JSON.stringify(name)}; configured: ${[...ctx.policies.keys()].join(', ') || 'none'}`);
      refuseEncodedBody(request);
      const identity = ctx.auth ? (await ctx.auth.authenticate(request.headers.authorization)).identity : 'anonymous';
      const stored: ObjectInfo[] = [];
      try {
        // Limits one above the policy's, so the policy's own clearer errors answer first.
        const parts = request.files({ limits: { files: policy.maxFiles + 1, fileSize: policy.maxSize + 1, fieldNameSize: 100, fields: 20 } });
        for await (const part of parts) {
          if (stored.length >= policy.maxFiles) throw new HttpError(400, 'E_TOO_MANY_FILES', `at most ${policy.maxFiles} files per request`);
          const fileName = part.filename;
          if (fileName.length > policy.maxFileNameLength || BAD_FILE_NAME.test(fileName)) {
            throw new HttpError(400, 'E_INVALID_FILE_NAME', `file names must be at most ${policy.maxFileNameLength} characters, without "/", "\\" or control characters`);
          }
          const { head, body } = await sniff(part.file);
          const detected = await fileTypeFromBuffer(head);
          if (!detected || !policy.allowedTypes.has(detected.mime)) {
            throw new HttpError(415, 'E_UNSUPPORTED_MEDIA_TYPE', `this file's content is ${detected?.mime ?? 'not a recognised type'}; allowed: ${[...policy.allowedTypes].join(', ')}`);
          }
          const key = policy.template.build({ userId: identity, ext: detected.ext });
          await guard(ctx, request, 'write', key);
          const info = await ctx.storage.put(key, body, { contentType: detected.mime, maxSize: policy.maxSize, ifNoneMatch: '*', metadata: { 'original-name': fileName } });
          stored.push(info);
        }
        if (stored.length === 0) throw new HttpError(400, 'E_NO_FILES', 'the request holds no file');
      } catch (err) {
        // All or nothing: undo the files this request stored. Only those: every key is new
        // (ifNoneMatch), so no earlier object is touched. An undo that fails is logged, since
        // the client is told nothing was kept.
        const keys = stored.map((s) => s.key);
        await ctx.storage.deleteMany(keys).catch((undoErr: unknown) => request.log.error({ err: undoErr, keys }, 'a failed upload could not remove the files it had stored'));
        throw multipartFailure(err);
      }
      return reply.status(201).send({
        files: stored.map((s) => ({ key: s.key, url: `/api/objects/${encodeKeyPath(s.key)}`, size: s.size, contentType: s.contentType, etag: s.etag, sha256: s.sha256 })),
      });
    },
  });
}
