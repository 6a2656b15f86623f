/**
 * `POST /api/uploads?template=<name>`: multipart/form-data browser uploads, streamed
 * part by part (never buffered whole). Each file gets a key from the named server-side
 * template (`{userId}` is the caller's identity, `{uuid}`, `{ext}` from the detected
 * type), never from the client's file name. The template's policy limits size (while
 * streaming: 413, nothing stored), types (by magic bytes; the claimed Content-Type is not
 * trusted: 415), the number of files, and file names. A request that fails stores nothing.
 * Without configured policies, one default template takes any type that cannot run as
 * a page; `?template=` may be left out when only one template exists.
 */
import type { FastifyInstance } from 'fastify';
import type { FromSchema } from 'json-schema-to-ts';
import { fileTypeFromBuffer, supportedMimeTypes } from 'file-type';
import mime from 'mime';
import { z } from 'zod';
import { contentTypeEssence, isActiveContentType } from '../../core/active-types.js';
import { StorageError } from '../../core/errors.js';
import { DEFAULT_CONTENT_TYPE, isQueued } from '../../core/objects.js';
import { validateContentType } from '../../core/options.js';
import { encodeKeyPath, keyTemplate, type KeyTemplate } from '../../core/keys.js';
import type { WriteResult } from '../../core/types.js';
import { ERROR_RESPONSES, HttpError } from '../catalogue.js';
import { guard, type RouteContext } from './context.js';
import { refuseEncodedBody } from './objects.js';

const policySchema = z.object({
  /** The key template, e.g. `user_photos/{userId}/{uuid}.{ext}`. */
  template: z.string().min(1),
  /** Largest file in bytes. */
  maxSize: z.number().int().positive(),
  /**
   * Allowed MIME types, as detected from the bytes; or `"*"`: any type but those that
   * run as a page (see fileType).
   */
  allowedTypes: z.union([z.literal('*'), z.array(z.string().regex(/^[\w.+-]+\/[\w.+-]+$/)).min(1)]),
  /** Most files in one request (default 10). */
  maxFiles: z.number().int().positive().default(10),
  /** Longest client file name, in characters (default 255). */
  maxFileNameLength: z.number().int().positive().default(255),
});

/** Upload templates by name, as in STOWAGE_UPLOAD_POLICIES. */
export type UploadPolicies = Record<string, z.input<typeof policySchema>>;

/** The template of `npm start` when no policies are configured. */
export const DEFAULT_UPLOAD_TEMPLATE = 'uploads/{date}/{uuid}.{ext}';

/** The policies in force when none are configured: `default`, any safe type up to `maxSize`. */
export function defaultUploadPolicies(maxSize: number): UploadPolicies {
  return { default: { template: DEFAULT_UPLOAD_TEMPLATE, maxSize, allowedTypes: '*' } };
}

/** A checked upload policy. */
export interface CompiledPolicy {
  template: KeyTemplate;
  maxSize: number;
  allowedTypes: ReadonlySet<string> | '*';
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
    const allowedTypes = p.allowedTypes === '*' ? '*' : new Set(p.allowedTypes);
    compiled.set(name, { template, maxSize: p.maxSize, allowedTypes, maxFiles: p.maxFiles, maxFileNameLength: p.maxFileNameLength });
  }
  return compiled;
}

/** Magic numbers of every format file-type knows fit in this many bytes. */
export const SNIFF_BYTES = 4100;
// eslint-disable-next-line no-control-regex
const BAD_FILE_NAME = /[\u0000-\u001f\u007f/\\]/;

/** Refuses (400) a client's file name the policy does not take: too long, or with `/`, `\\` or control characters. */
export function checkFileName(policy: CompiledPolicy, fileName: string): void {
  if (fileName.length > policy.maxFileNameLength || BAD_FILE_NAME.test(fileName)) {
    throw new HttpError('E_INVALID_FILE_NAME', `file names must be at most ${policy.maxFileNameLength} characters, without "/", "\\" or control characters`);
  }
}

/** Reads the first bytes of a stream and returns them with an iterable of the whole stream. */
export async function sniff(stream: AsyncIterable<Uint8Array>): Promise<{ head: Buffer; body: AsyncIterable<Uint8Array> }> {
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

/** A type to store a file as, with the extension its key gets. */
export interface FileType {
  mime: string;
  ext: string;
}

/**
 * What the client claimed, when the bytes do not contradict it: a valid type that
 * file-type cannot recognise (so its silence says nothing), e.g. text/plain or text/csv.
 * A claim file-type would have recognised, a PNG without a PNG's signature say, is
 * contradicted by the bytes.
 */
function claimedType(claimed: string): FileType | undefined {
  const essence = contentTypeEssence(claimed);
  if (essence === undefined || supportedMimeTypes.has(essence)) return undefined;
  try {
    validateContentType(claimed);
  } catch {
    return undefined;
  }
  const ext = mime.getExtension(essence) ?? 'bin';
  return { mime: claimed, ext: /^[a-z0-9]{1,16}$/i.test(ext) ? ext : 'bin' };
}

/**
 * The type a file is stored as under `policy`, or a 415. A list allows the types detected
 * from the bytes. `"*"` allows any type that cannot run as a page: the detected type,
 * else the claimed one when the bytes do not contradict it, else application/octet-stream.
 */
export function fileType(policy: CompiledPolicy, detected: FileType | undefined, claimed: string): FileType {
  if (policy.allowedTypes !== '*') {
    if (!detected || !policy.allowedTypes.has(detected.mime)) {
      throw new HttpError('E_UNSUPPORTED_MEDIA_TYPE', `this file's content is ${detected?.mime ?? 'not a recognised type'}; allowed: ${[...policy.allowedTypes].join(', ')}`);
    }
    return detected;
  }
  const type = detected ?? claimedType(claimed) ?? { mime: DEFAULT_CONTENT_TYPE, ext: 'bin' };
  if (isActiveContentType(type.mime)) {
    throw new HttpError('E_UNSUPPORTED_MEDIA_TYPE', `this file is ${type.mime}, a type browsers run as a page (HTML, SVG, XML, JavaScript); it is not accepted`);
  }
  return type;
}

/** The policy a request names, or the only one; a 400 that lists the configured templates otherwise. */
export function choosePolicy(policies: Map<string, CompiledPolicy>, name: string | undefined): { name: string; policy: CompiledPolicy } {
  const configured = [...policies.keys()].join(', ');
  const chosen = name ?? (policies.size === 1 ? [...policies.keys()][0] : undefined);
  if (chosen === undefined) throw new HttpError('E_INVALID_ARGUMENT', `choose an upload template with ?template=; configured: ${configured}`);
  const policy = policies.get(chosen);
  if (!policy) throw new HttpError('E_INVALID_ARGUMENT', `unknown upload template ${JSON.stringify(chosen)}; configured: ${configured}`);
  return { name: chosen, policy };
}

/**
 * The error to answer a failed multipart request with: errors that already say what
 * went wrong as they are; anything else from the form parser means a malformed body.
 */
export function multipartFailure(err: unknown): unknown {
  const known = err instanceof StorageError || err instanceof HttpError || (typeof err === 'object' && err !== null && 'statusCode' in err);
  return known ? err : new HttpError('E_MALFORMED_MULTIPART', `the multipart body could not be read: ${(err as Error).message}`);
}

/** The query of an upload: the template to store the files by. */
const uploadQuerySchema = { type: 'object', properties: { template: { type: 'string' } } } as const;

/** What a stored upload answers: each file's key, where to fetch it, and its info. */
const uploadedSchema = {
  type: 'object',
  properties: {
    files: {
      type: 'array',
      items: {
        type: 'object',
        properties: {
          status: { type: 'string', enum: ['stored', 'queued'], description: 'queued: the backend is down and the outbox will deliver it (then the answer is 202)' },
          key: { type: 'string' },
          url: { type: 'string' },
          size: { type: 'integer' },
          contentType: { type: 'string' },
          etag: { type: 'string' },
          sha256: { type: 'string' },
          id: { type: 'string', description: 'the outbox entry of a queued file' },
        },
      },
    },
  },
} as const;

/** Registers the upload route (only when policies are configured). */
export async function uploadRoutes(app: FastifyInstance, ctx: RouteContext & { policies: Map<string, CompiledPolicy> }): Promise<void> {
  app.post<{ Querystring: FromSchema<typeof uploadQuerySchema> }>('/api/uploads', {
    schema: { querystring: uploadQuerySchema, response: { 201: uploadedSchema, 202: uploadedSchema, ...ERROR_RESPONSES } },
    handler: async (request, reply) => {
      const { policy } = choosePolicy(ctx.policies, request.query.template);
      refuseEncodedBody(request);
      const identity = ctx.auth ? (await ctx.auth.authenticate(request.headers.authorization)).identity : 'anonymous';
      const stored: { result: WriteResult; contentType: string }[] = [];
      try {
        // Limits one above the policy's, so the policy's own clearer errors answer first.
        const parts = request.files({ limits: { files: policy.maxFiles + 1, fileSize: policy.maxSize + 1, fieldNameSize: 100, fields: 20 } });
        for await (const part of parts) {
          if (stored.length >= policy.maxFiles) throw new HttpError('E_TOO_MANY_FILES', `at most ${policy.maxFiles} files per request`);
          const fileName = part.filename;
          checkFileName(policy, fileName);
          const { head, body } = await sniff(part.file);
          const type = fileType(policy, await fileTypeFromBuffer(head), part.mimetype);
          const key = policy.template.build({ userId: identity, ext: type.ext });
          await guard(ctx, request, 'write', key);
          const result = await ctx.storage.put(key, body, { contentType: type.mime, maxSize: policy.maxSize, ifNoneMatch: '*', metadata: { 'original-name': fileName } });
          stored.push({ result, contentType: type.mime });
        }
        if (stored.length === 0) throw new HttpError('E_NO_FILES', 'the request holds no file');
      } catch (err) {
        // All or nothing: undo the files this request stored. Only those: every key is new
        // (ifNoneMatch), so no earlier object is touched. An undo that fails is logged, since
        // the client is told nothing was kept.
        // (A queued file's delete drops it from the outbox.)
        const keys = stored.map((s) => s.result.key);
        await ctx.storage.deleteMany(keys).catch((undoErr: unknown) => request.log.error({ err: undoErr, keys }, 'a failed upload could not remove the files it had stored'));
        throw multipartFailure(err);
      }
      // 202 when any file was queued: the request is accepted, not all of it stored yet.
      const anyQueued = stored.some((s) => isQueued(s.result));
      return reply.status(anyQueued ? 202 : 201).send({
        files: stored.map(({ result, contentType }) => {
          const common = { key: result.key, url: `/api/objects/${encodeKeyPath(result.key)}`, size: result.size, contentType, sha256: result.sha256 };
          return isQueued(result) ? { status: 'queued', ...common, id: result.id } : { status: 'stored', ...common, etag: result.etag };
        }),
      });
    },
  });
}
