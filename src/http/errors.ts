/**
 * The one error handler of the service: StorageError codes map to HTTP statuses,
 * Fastify's own errors map onto our codes, and every error answers
 * `{ "error": { "code", "message", "requestId" } }` with the user-facing message. Stack
 * traces, paths and secrets go to the log only. Also here: what becomes of the rest of
 * a request body once an upload is refused.
 */
import type { Readable } from 'node:stream';
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { StorageError, type ErrorCode } from '../core/errors.js';
import { UnauthenticatedError } from './auth.js';

/** The HTTP status of each error code. */
export const HTTP_STATUS: Record<ErrorCode, number> = {
  E_NOT_FOUND: 404,
  E_ALREADY_EXISTS: 409,
  E_INVALID_KEY: 400,
  E_INVALID_ARGUMENT: 400,
  E_PRECONDITION_FAILED: 412,
  E_RANGE_NOT_SATISFIABLE: 416,
  E_CHECKSUM_MISMATCH: 422,
  E_TOO_LARGE: 413,
  E_QUOTA_EXCEEDED: 507,
  E_ACCESS_DENIED: 403,
  E_BUCKET_NOT_FOUND: 503,
  E_UNAVAILABLE: 503,
  E_TIMEOUT: 504,
  E_CONFIG_INVALID: 500,
  E_UNSUPPORTED: 501,
  // nginx's "client closed request": only a request whose client went away is cancelled.
  E_ABORTED: 499,
};

/** The JSON body of an error response. */
export interface ErrorBody {
  error: { code: string; message: string; requestId: string };
}

/** A refusal that only exists at the HTTP level (415, too many files, bad file names). */
export class HttpError extends Error {
  constructor(
    readonly statusCode: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

/**
 * Refused bodies with a declared length up to this are read to the end and dropped:
 * clients (browsers, fetch) that are still sending when the answer comes would
 * otherwise hit a closed connection and report a network error instead of the answer.
 */
const DRAIN_LIMIT_BYTES = 1024 * 1024;

/**
 * After refusing a request whose body was not read to the end: a short body is
 * drained (read and dropped) so the connection stays usable and the client gets the
 * answer; a long one, or one of unknown length, closes the connection once answered, so
 * the client stops uploading at once instead of sending gigabytes nobody reads.
 */
function stopReadingBody(request: FastifyRequest, reply: FastifyReply): void {
  if (request.raw.complete) return;
  const declared = Number(request.headers['content-length']);
  // Nothing reads the body any more, a form parser it was piped into included.
  request.raw.unpipe();
  if (declared <= DRAIN_LIMIT_BYTES) request.raw.resume();
  else void reply.header('connection', 'close');
}

/**
 * A raw request body for storage.put. Storage stops a body it refuses (size limit) by
 * ending its iteration; for a request that must not destroy it, which would reset the
 * connection before the answer, but leave it to the error handler (stopReadingBody).
 */
export function requestBody(request: FastifyRequest): AsyncIterable<Buffer> {
  return (request.body as Readable).iterator({ destroyOnReturn: false });
}

/** Builds an error body. */
export function errorBody(code: string, message: string, requestId: string): ErrorBody {
  return { error: { code, message, requestId } };
}

/** Codes the error handler answers with itself, besides StorageError and HttpError codes. */
export const HANDLER_STATUS = { E_UNAUTHENTICATED: 401, E_ROUTE_NOT_FOUND: 404, E_INTERNAL: 500 } as const;

/**
 * Fastify's and @fastify/multipart's own errors whose status alone would pick the wrong
 * code (or status): [status, code, message]. Every other framework error is mapped by
 * its status (FRAMEWORK_STATUS_CODES), so only documented codes ever reach a client.
 */
export const FRAMEWORK_ERRORS: Readonly<Record<string, [number, string, string?]>> = {
  FST_FILES_LIMIT: [400, 'E_TOO_MANY_FILES', 'the form holds too many files'],
  FST_PARTS_LIMIT: [400, 'E_MALFORMED_MULTIPART', 'the form holds too many parts'],
  FST_FIELDS_LIMIT: [400, 'E_MALFORMED_MULTIPART', 'the form holds too many fields'],
  FST_MP_PREMATURE_CLOSE: [400, 'E_MALFORMED_MULTIPART'],
  FST_PROTO_VIOLATION: [400, 'E_MALFORMED_MULTIPART'],
  FST_INVALID_JSON_FIELD_ERROR: [400, 'E_MALFORMED_MULTIPART'],
  FST_INVALID_MULTIPART_CONTENT_TYPE: [415, 'E_UNSUPPORTED_MEDIA_TYPE', 'the request must be multipart/form-data'],
};

/** The code of other framework errors by status; any other 4xx is answered as 400 E_INVALID_ARGUMENT, anything else as 500 E_INTERNAL. */
export const FRAMEWORK_STATUS_CODES: Readonly<Record<number, string>> = { 400: 'E_INVALID_ARGUMENT', 413: 'E_TOO_LARGE', 415: 'E_UNSUPPORTED_MEDIA_TYPE' };

/** A framework error (validation, bad JSON, wrong media type, body too large) as one of our codes. */
function frameworkError(err: FastifyError): { status: number; code: string; message: string } {
  const known = err.code === undefined ? undefined : FRAMEWORK_ERRORS[err.code];
  if (known) return { status: known[0], code: known[1], message: known[2] ?? err.message };
  const status = typeof err.statusCode === 'number' ? err.statusCode : 500;
  if (status >= 500 || status < 400) return { status: HANDLER_STATUS.E_INTERNAL, code: 'E_INTERNAL', message: 'Internal error.' };
  const code = FRAMEWORK_STATUS_CODES[status];
  return code ? { status, code, message: err.message } : { status: 400, code: 'E_INVALID_ARGUMENT', message: err.message };
}

/** The error response for `err`: its status, our code and the message meant for the client; details go to the log. */
export function replyWithError(err: Error, request: FastifyRequest, reply: FastifyReply): FastifyReply {
  stopReadingBody(request, reply);
  if (err instanceof StorageError) {
    const status = HTTP_STATUS[err.code];
    // A body the client stopped sending (timeouts.ts already answered 408) is the client's doing, not a fault of ours.
    if (err.details?.bodyIdleTimeoutMs !== undefined) {
      request.log.info({ code: 'E_REQUEST_TIMEOUT', operation: err.operation }, err.message);
      return reply.status(408).send(errorBody('E_REQUEST_TIMEOUT', err.message, request.id));
    }
    const log = status >= 500 ? request.log.error.bind(request.log) : request.log.info.bind(request.log);
    log({ err, code: err.code, key: err.key, operation: err.operation }, 'storage error');
    if (err.retryable) void reply.header('retry-after', '1');
    return reply.status(status).send(errorBody(err.code, err.publicMessage, request.id));
  }
  if (err instanceof HttpError) {
    request.log.info({ code: err.code }, err.message);
    return reply.status(err.statusCode).send(errorBody(err.code, err.message, request.id));
  }
  if (err instanceof UnauthenticatedError) {
    void reply.header('www-authenticate', 'Bearer');
    return reply.status(HANDLER_STATUS.E_UNAUTHENTICATED).send(errorBody('E_UNAUTHENTICATED', err.message, request.id));
  }
  const { status, code, message } = frameworkError(err as FastifyError);
  if (status >= 500) request.log.error({ err }, 'unexpected error');
  else request.log.info({ err }, 'bad request');
  return reply.status(status).send(errorBody(code, message, request.id));
}

/** Installs the error and not-found handlers. */
export function installErrorHandlers(app: FastifyInstance): void {
  app.setErrorHandler(replyWithError);
  app.setNotFoundHandler((request, reply) =>
    reply.status(HANDLER_STATUS.E_ROUTE_NOT_FOUND).send(errorBody('E_ROUTE_NOT_FOUND', `no route for ${request.method} ${request.url.split('?')[0] ?? ''}`, request.id)),
  );
}
