/**
 * The tus 1.0 endpoint at `/api/tus/` (tus.io/protocols/resumable-upload): OPTIONS,
 * creation (POST, with an upload in its body or not, with a deferred length or not, or
 * the final upload of a concatenation), HEAD for the offset, PATCH, and termination
 * (DELETE); a POST with `X-HTTP-Method-Override` stands for PATCH or DELETE where a
 * proxy blocks them. Every answer carries `Tus-Resumable`; a finished upload's last PATCH,
 * HEAD and creation carry `Stowage-Object-Key`, where the object was stored. Implemented
 * here rather than with @tus/server, whose stores offer neither checksums nor
 * concatenation (see the README). The uploads themselves are uploads.ts's.
 */
import type { Readable } from 'node:stream';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { isStorageError, StorageError } from '../../core/errors.js';
import { ERROR_RESPONSES, HttpError } from '../catalogue.js';
import { requestBody } from '../errors.js';
import { guard, type RouteContext } from '../routes/context.js';
import type { CompiledPolicy } from '../routes/uploads.js';
import { checkResumable, effectiveMethod, formatExpires, formatMetadata, parseBytes, parseChecksum, parseConcat, parseMetadata, parseUploadLength, TUS_CHECKSUM_ALGORITHMS, TUS_EXTENSIONS, TUS_VERSION } from './protocol.js';
import { UPLOAD_ID, type TusRecord } from './records.js';
import { TusUploads, type UploadState } from './uploads.js';

/** Where the endpoint lives; an upload's URL is this and its id. */
export const TUS_PATH = '/api/tus/';
/** The type every PATCH body (and a creation's upload) must declare. */
const OFFSET_OCTET_STREAM = 'application/offset+octet-stream';
/** How often an instance removes the records of expired uploads. */
const SWEEP_INTERVAL_MS = 3600_000;
/** The response header naming the stored object's key. */
export const OBJECT_KEY_HEADER = 'Stowage-Object-Key';

const RESPONSES = { schema: { response: { ...ERROR_RESPONSES } } } as const;

type TusRequest = FastifyRequest<{ Params: { id?: string }; Querystring: { template?: string }; Body: Readable | undefined }>;

/** A header's one value (a repeated header is refused as ambiguous). */
function header(request: FastifyRequest, name: string): string | undefined {
  const value = request.headers[name.toLowerCase()];
  if (Array.isArray(value)) throw new StorageError('E_INVALID_ARGUMENT', `${name}: given more than once`, { details: { header: name } });
  return value;
}

/** The request's bytes, read without destroying the request when the reading stops early (so a refusal still reaches the client). */
function bodyOf(request: TusRequest): AsyncIterable<Uint8Array> {
  return request.body ? requestBody(request as FastifyRequest<{ Body: Readable }>) : noBytes();
}

async function* noBytes(): AsyncGenerator<Uint8Array> {}

/** Whether the request carries a body: a length above zero, or a chunked one. */
function hasBody(request: FastifyRequest): boolean {
  return request.headers['transfer-encoding'] !== undefined || Number(request.headers['content-length'] ?? 0) > 0;
}

/** Refuses a body of another type than tus's (415). */
function checkBodyType(request: FastifyRequest): void {
  const type = header(request, 'Content-Type')?.split(';')[0]?.trim().toLowerCase();
  if (type !== OFFSET_OCTET_STREAM) throw new HttpError('E_UNSUPPORTED_MEDIA_TYPE', `a tus upload's bytes are sent as Content-Type ${OFFSET_OCTET_STREAM}`);
}

/** The headers of an upload's state: offset, length, expiry and the stored key. */
function stateHeaders(reply: FastifyReply, { record, offset }: UploadState): void {
  void reply.header('Upload-Offset', String(offset));
  if (record.stored) void reply.header(OBJECT_KEY_HEADER, record.stored.key);
  else void reply.header('Upload-Expires', formatExpires(new Date(record.expiresAt)));
}

/** What a HEAD describes besides the state: length, metadata, concatenation. */
function describe(reply: FastifyReply, record: TusRecord): void {
  if (record.size !== undefined) void reply.header('Upload-Length', String(record.size));
  else void reply.header('Upload-Defer-Length', '1');
  if (record.metadata.length > 0) void reply.header('Upload-Metadata', formatMetadata(new Map(record.metadata)));
  if (record.partial) void reply.header('Upload-Concat', 'partial');
  if (record.parts) void reply.header('Upload-Concat', `final;${record.parts.map((id) => `${TUS_PATH}${id}`).join(' ')}`);
}

/** The protocol's own answers to failures the catalogue names otherwise (460, 423), and `Tus-Version` on 412. */
function tusFailure(reply: FastifyReply, err: unknown): unknown {
  if (isStorageError(err, 'E_CHECKSUM_MISMATCH')) return new HttpError('E_UPLOAD_CHECKSUM_MISMATCH');
  if (isStorageError(err, 'E_PRECONDITION_FAILED')) {
    if (err.details?.tusVersion !== undefined) void reply.header('Tus-Version', TUS_VERSION);
    else if (err.retryable) return new HttpError('E_UPLOAD_LOCKED');
  }
  return err;
}

/** Registers the tus endpoint on a scope whose bodies arrive as raw streams. */
export async function tusRoutes(app: FastifyInstance, ctx: RouteContext & { policies: Map<string, CompiledPolicy> }): Promise<void> {
  const uploads = new TusUploads(ctx.storage, ctx.policies);
  const maxSize = Math.max(...[...ctx.policies.values()].map((p) => p.maxSize));
  const identityOf = async (request: FastifyRequest) => (ctx.auth ? (await ctx.auth.authenticate(request.headers.authorization)).identity : 'anonymous');
  const authorizer = (request: FastifyRequest) => (key: string) => guard(ctx, request, 'write', key);

  // The records of expired uploads are removed as uploads are created, at most once an hour per instance.
  let sweptAt = 0;
  const sweep = (request: FastifyRequest) => {
    if (Date.now() - sweptAt < SWEEP_INTERVAL_MS) return;
    sweptAt = Date.now();
    void uploads.records.removeExpired(new Date()).catch((err: unknown) => request.log.warn({ err }, 'could not remove the records of expired tus uploads'));
  };

  app.addHook('onSend', async (_request, reply) => {
    void reply.header('Tus-Resumable', TUS_VERSION);
  });

  /** Runs a tus handler: the version checked first, failures in the protocol's terms. */
  const handle = (fn: (request: TusRequest, reply: FastifyReply) => Promise<FastifyReply>) => async (request: TusRequest, reply: FastifyReply) => {
    try {
      checkResumable(header(request, 'Tus-Resumable'));
      return await fn(request, reply);
    } catch (err) {
      request.body?.resume(); // a refused body is read to its end, so the answer reaches the client
      throw tusFailure(reply, err);
    }
  };

  const patch = async (request: TusRequest, reply: FastifyReply) => {
    checkBodyType(request);
    const offsetHeader = header(request, 'Upload-Offset');
    if (offsetHeader === undefined) throw new StorageError('E_INVALID_ARGUMENT', 'Upload-Offset: a PATCH says where its bytes start', { details: { header: 'Upload-Offset' } });
    const length = header(request, 'Upload-Length');
    const state = await uploads.patch(request.params.id ?? '', await identityOf(request), {
      offset: parseBytes('Upload-Offset', offsetHeader),
      length: length === undefined ? undefined : parseBytes('Upload-Length', length),
      checksum: parseChecksum(header(request, 'Upload-Checksum')),
      body: bodyOf(request),
    }, authorizer(request));
    request.body?.resume();
    stateHeaders(reply, state);
    return reply.status(204).send();
  };

  const terminate = async (request: TusRequest, reply: FastifyReply) => {
    await uploads.terminate(request.params.id ?? '', await identityOf(request));
    return reply.status(204).send();
  };

  for (const path of [TUS_PATH, `${TUS_PATH}:id`]) {
    app.options(path, { ...RESPONSES, schema: { ...RESPONSES.schema, description: 'what the tus endpoint supports' } }, async (_request, reply) =>
      reply
        .header('Tus-Version', TUS_VERSION)
        .header('Tus-Extension', TUS_EXTENSIONS.join(','))
        .header('Tus-Max-Size', String(maxSize))
        .header('Tus-Checksum-Algorithm', TUS_CHECKSUM_ALGORITHMS.join(','))
        .status(204)
        .send(),
    );
  }

  const creationQuery = { type: 'object', properties: { template: { type: 'string', description: 'the upload template (STOWAGE_UPLOAD_POLICIES) to store by; may be left out when there is one' } } } as const;
  app.post(TUS_PATH, { schema: { ...RESPONSES.schema, querystring: creationQuery, description: 'creates a tus upload (with its first bytes, or the final upload of a concatenation)' } }, handle(async (request, reply) => {
    if (header(request, 'X-HTTP-Method-Override') !== undefined) throw new StorageError('E_INVALID_ARGUMENT', 'X-HTTP-Method-Override: a creation is a plain POST', { details: { header: 'X-HTTP-Method-Override' } });
    const identity = await identityOf(request);
    sweep(request);
    const template = request.query.template;
    const concat = parseConcat(header(request, 'Upload-Concat'), TUS_PATH, UPLOAD_ID);
    const metadata = parseMetadata(header(request, 'Upload-Metadata'));
    if (concat?.kind === 'final') {
      const record = await uploads.concatenate(identity, template, concat.ids, metadata, authorizer(request));
      stateHeaders(reply, { record, offset: record.size ?? 0 });
      return reply.header('Location', `${TUS_PATH}${record.id}`).status(201).send();
    }
    const length = parseUploadLength(header(request, 'Upload-Length'), header(request, 'Upload-Defer-Length'));
    const withUpload = hasBody(request);
    if (withUpload) checkBodyType(request);
    const record = await uploads.create(identity, template, length, metadata, concat?.kind === 'partial', authorizer(request));
    void reply.header('Location', `${TUS_PATH}${record.id}`);
    if (!withUpload) {
      void reply.header('Upload-Expires', formatExpires(new Date(record.expiresAt)));
      return reply.status(201).send();
    }
    // creation-with-upload: the body is the first PATCH, at offset 0.
    const state = await uploads.patch(record.id, identity, { offset: 0, checksum: parseChecksum(header(request, 'Upload-Checksum')), body: bodyOf(request) }, authorizer(request));
    stateHeaders(reply, state);
    return reply.status(201).send();
  }));

  app.head(`${TUS_PATH}:id`, RESPONSES, handle(async (request, reply) => {
    const state = await uploads.state(request.params.id ?? '', await identityOf(request));
    stateHeaders(reply, state);
    describe(reply, state.record);
    return reply.header('Cache-Control', 'no-store').status(200).send();
  }));

  app.patch(`${TUS_PATH}:id`, RESPONSES, handle(patch));
  app.delete(`${TUS_PATH}:id`, RESPONSES, handle(terminate));
  app.post(`${TUS_PATH}:id`, { ...RESPONSES, schema: { ...RESPONSES.schema, description: 'PATCH or DELETE through X-HTTP-Method-Override' } }, handle(async (request, reply) => {
    const method = effectiveMethod('POST', header(request, 'X-HTTP-Method-Override'));
    if (method === 'PATCH') return patch(request, reply);
    if (method === 'DELETE') return terminate(request, reply);
    throw new StorageError('E_INVALID_ARGUMENT', 'X-HTTP-Method-Override: a POST to an upload needs X-HTTP-Method-Override: PATCH or DELETE', { details: { header: 'X-HTTP-Method-Override' } });
  }));
}
