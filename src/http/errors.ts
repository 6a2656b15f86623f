/**
 * The one error handler of the service: StorageError and HttpError codes answer at
 * their statuses in the catalogue (catalogue.ts), Fastify's own errors map onto
 * catalogued codes, and every error answers `{ "error": { "code", "message",
 * "requestId" } }` with the user-facing message. Stack traces, paths and secrets go to
 * the log only. Also here: what becomes of the rest of a request body once an upload
 * is refused.
 */
import type { Readable } from 'node:stream';
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { StorageError } from '../core/errors.js';
import { HTTP_STATUS, HttpError, sendError, type HttpErrorCode } from './catalogue.js';

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
export function requestBody(request: FastifyRequest<{ Body: Readable }>): AsyncIterable<Buffer> {
  return request.body.iterator({ destroyOnReturn: false });
}

/**
 * The body's size as the request declares it (Content-Length), so a quota can refuse an
 * upload that cannot fit before reading it; undefined for a chunked body. (Node's parser
 * has checked the header is one number and delivers exactly that many bytes.)
 */
export function declaredSize(request: FastifyRequest): number | undefined {
  const length = request.headers['content-length'];
  if (length === undefined || request.headers['transfer-encoding'] !== undefined) return undefined;
  const size = Number(length);
  return Number.isSafeInteger(size) && size >= 0 ? size : undefined;
}

/**
 * Fastify's and @fastify/multipart's own errors whose status alone would pick the wrong
 * code: [code, message]. Every other framework error is mapped by its status
 * (FRAMEWORK_STATUS_CODES), so only catalogued codes ever reach a client.
 */
export const FRAMEWORK_ERRORS: Readonly<Record<string, readonly [HttpErrorCode, string?]>> = {
  FST_FILES_LIMIT: ['E_TOO_MANY_FILES', 'the form holds too many files'],
  FST_PARTS_LIMIT: ['E_MALFORMED_MULTIPART', 'the form holds too many parts'],
  FST_FIELDS_LIMIT: ['E_MALFORMED_MULTIPART', 'the form holds too many fields'],
  FST_MP_PREMATURE_CLOSE: ['E_MALFORMED_MULTIPART'],
  FST_PROTO_VIOLATION: ['E_MALFORMED_MULTIPART'],
  FST_INVALID_JSON_FIELD_ERROR: ['E_MALFORMED_MULTIPART'],
  FST_INVALID_MULTIPART_CONTENT_TYPE: ['E_UNSUPPORTED_MEDIA_TYPE', 'the request must be multipart/form-data'],
};

/**
 * The code of other framework errors by their status (each code's own status is that
 * status); any other 4xx is answered as E_INVALID_ARGUMENT, anything else as E_INTERNAL.
 */
export const FRAMEWORK_STATUS_CODES: Readonly<Record<number, HttpErrorCode>> = { 400: 'E_INVALID_ARGUMENT', 413: 'E_TOO_LARGE', 415: 'E_UNSUPPORTED_MEDIA_TYPE' };

/** A framework error (validation, bad JSON, wrong media type, body too large) as one of our codes; no message means the code's own. */
function frameworkError(err: FastifyError): { code: HttpErrorCode; message?: string } {
  const known = err.code === undefined ? undefined : FRAMEWORK_ERRORS[err.code];
  if (known) return { code: known[0], message: known[1] ?? err.message };
  const status = typeof err.statusCode === 'number' ? err.statusCode : 500;
  if (status >= 500 || status < 400) return { code: 'E_INTERNAL' };
  return { code: FRAMEWORK_STATUS_CODES[status] ?? 'E_INVALID_ARGUMENT', message: err.message };
}

/** The error response for `err`: its status, our code and the message meant for the client; details go to the log. */
export function replyWithError(err: Error, request: FastifyRequest, reply: FastifyReply): FastifyReply {
  stopReadingBody(request, reply);
  if (err instanceof StorageError) {
    // A body the client stopped sending (timeouts.ts already answered 408) is the client's doing, not a fault of ours.
    if (err.details?.bodyIdleTimeoutMs !== undefined) {
      request.log.info({ code: 'E_REQUEST_TIMEOUT', operation: err.operation }, err.message);
      return sendError(reply, 'E_REQUEST_TIMEOUT', err.message, request.id);
    }
    const log = HTTP_STATUS[err.code] >= 500 ? request.log.error.bind(request.log) : request.log.info.bind(request.log);
    log({ err, code: err.code, key: err.key, operation: err.operation }, 'storage error');
    if (err.retryable) void reply.header('retry-after', '1');
    return sendError(reply, err.code, err.publicMessage, request.id);
  }
  if (err instanceof HttpError) {
    request.log.info({ code: err.code }, err.message);
    if (err.code === 'E_UNAUTHENTICATED') void reply.header('www-authenticate', 'Bearer');
    return sendError(reply, err.code, err.message, request.id);
  }
  const { code, message } = frameworkError(err as FastifyError);
  if (code === 'E_INTERNAL') request.log.error({ err }, 'unexpected error');
  else request.log.info({ err }, 'bad request');
  return sendError(reply, code, message, request.id);
}

/** Installs the error and not-found handlers. */
export function installErrorHandlers(app: FastifyInstance): void {
  app.setErrorHandler(replyWithError);
  app.setNotFoundHandler((request, reply) => sendError(reply, 'E_ROUTE_NOT_FOUND', `no route for ${request.method} ${request.url.split('?')[0] ?? ''}`, request.id));
}
