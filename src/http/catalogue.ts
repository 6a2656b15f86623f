/**
 * The catalogue of every code the HTTP service answers with: its status, the public
 * message a client sees when nothing more specific is known, and a line for the docs.
 * The library's StorageError codes are here (with their statuses) beside the service's
 * own, so the catalogue is complete: routes, hooks and the error handler answer only
 * through it (HttpError, sendError), the README's table is rendered from it
 * (scripts/error-table.ts) and the OpenAPI document lists its codes (ERROR_SCHEMA).
 */
import type { FastifyReply } from 'fastify';
import { PUBLIC_MESSAGES, type ErrorCode } from '../core/errors.js';

/** What the catalogue says about one code. */
export interface CatalogueEntry {
  /** The HTTP status every answer with this code has. */
  readonly status: number;
  /** The message a client sees when there is nothing more specific to say; safe for end users. */
  readonly message: string;
  /** When the code is answered, in one line, for the docs. */
  readonly description: string;
}

/** The service's own codes, which no StorageError carries: [status, description, public message]. */
const SERVICE_ERRORS = {
  E_UNAUTHENTICATED: [401, 'no valid API key or token', 'An API key or token is required.'],
  E_HOST_NOT_ALLOWED: [403, 'the `Host` is not one the service answers (see [Security](#security))', 'This host name is not allowed.'],
  E_ROUTE_NOT_FOUND: [404, 'no such route or method', 'There is no such route.'],
  E_REQUEST_TIMEOUT: [408, 'the request body stopped arriving (see [Security](#security)); nothing was stored', 'The request body stopped arriving; nothing was stored.'],
  E_UNSUPPORTED_MEDIA_TYPE: [415, 'a compressed body, a form that is not multipart, a file whose bytes are not an allowed type', 'This type of content is not accepted.'],
  E_MALFORMED_MULTIPART: [400, 'a form that cannot be read, is cut off, or has too many parts or fields', 'The form could not be read.'],
  E_TOO_MANY_FILES: [400, 'more files than the upload template (or a signed form) takes', 'The form holds too many files.'],
  E_NO_FILES: [400, 'an upload or signed form without a file', 'The request holds no file.'],
  E_INVALID_FILE_NAME: [400, "a file name longer than the template allows, or with `/`, `\\` or control characters", 'A file name is not allowed.'],
  E_UPLOAD_GONE: [410, 'a tus upload that was terminated, joined into a final upload, or expired', 'This upload no longer exists.'],
  E_UPLOAD_LOCKED: [423, 'another request is writing this tus upload now; nothing was written (retry once it ends)', 'Another request is writing this upload; retry shortly.'],
  E_UPLOAD_CHECKSUM_MISMATCH: [460, "a tus PATCH whose bytes differ from its `Upload-Checksum`; nothing of it was appended", 'The bytes do not match their checksum; nothing of them was kept.'],
  E_INTERNAL: [500, 'a bug: the log has the details', 'Internal error.'],
} as const satisfies Record<string, readonly [number, string, string]>;

/** A code only the HTTP service answers with. */
export type ServiceErrorCode = keyof typeof SERVICE_ERRORS;
/** Every code the HTTP service answers with: the library's and its own. */
export type HttpErrorCode = ErrorCode | ServiceErrorCode;

/** The library's codes over HTTP: [status, description]. Their message is StorageError's publicMessage. */
const STORAGE_ERRORS: Record<ErrorCode, readonly [number, string]> = {
  E_INVALID_KEY: [400, 'the key breaks a key rule (`..`, an encoded `/`, NUL, a backslash, ...)'],
  E_INVALID_ARGUMENT: [400, 'a malformed query, body, option, range or cursor; the message says which'],
  E_ACCESS_DENIED: [403, "outside the API key's prefixes or permissions, or a signed link refused"],
  E_NOT_FOUND: [404, 'the object does not exist'],
  E_ALREADY_EXISTS: [409, 'a create-only write found an object'],
  E_OFFSET_MISMATCH: [409, 'an upload session write at another offset than the session\'s (`details.offset`); nothing was written'],
  E_PRECONDITION_FAILED: [412, '`If-Match` did not match'],
  E_TOO_LARGE: [413, 'the body is over the limit; nothing was stored'],
  E_RANGE_NOT_SATISFIABLE: [416, 'the range starts past the end of the object'],
  E_CHECKSUM_MISMATCH: [422, "the body's SHA-256 differs from the expected one; nothing was stored"],
  // nginx's "client closed request": only a request whose client went away is cancelled.
  E_ABORTED: [499, 'the operation was cancelled (the service itself never cancels one: only a driver or layer of yours can)'],
  E_CONFIG_INVALID: [500, 'the server is misconfigured, or lacks a setting the request needs (named in the message)'],
  E_UNSUPPORTED: [501, 'the backend cannot do this'],
  E_BUCKET_NOT_FOUND: [503, 'the bucket, or the local root folder, does not exist'],
  E_UNAVAILABLE: [503, 'the backend cannot be reached or failed; `Retry-After` is set'],
  E_TIMEOUT: [504, 'the backend took too long; `Retry-After` is set'],
  E_QUOTA_EXCEEDED: [507, 'a quota, or the disk, is full'],
};

/** The catalogue: every code the service answers with, the library's first. */
export const ERROR_CATALOGUE: Readonly<Record<HttpErrorCode, CatalogueEntry>> = Object.freeze({
  ...(Object.fromEntries(
    Object.entries(STORAGE_ERRORS).map(([code, [status, description]]) => [code, { status, description, message: PUBLIC_MESSAGES[code as ErrorCode] }]),
  ) as Record<ErrorCode, CatalogueEntry>),
  ...(Object.fromEntries(Object.entries(SERVICE_ERRORS).map(([code, [status, description, message]]) => [code, { status, description, message }])) as Record<ServiceErrorCode, CatalogueEntry>),
});

/** Every code of the catalogue, in its order. */
export const HTTP_ERROR_CODES = Object.keys(ERROR_CATALOGUE) as readonly HttpErrorCode[];

/** The HTTP status of each StorageError code. */
export const HTTP_STATUS: Readonly<Record<ErrorCode, number>> = Object.fromEntries(Object.entries(STORAGE_ERRORS).map(([code, [status]]) => [code, status])) as Record<ErrorCode, number>;

/** The JSON body of an error response. */
export interface ErrorBody {
  error: { code: HttpErrorCode; message: string; requestId: string };
}

/** Builds an error body; the message defaults to the code's public message. */
export function errorBody(code: HttpErrorCode, message: string | undefined, requestId: string): ErrorBody {
  return { error: { code, message: message ?? ERROR_CATALOGUE[code].message, requestId } };
}

/** Answers with `code`, at the catalogue's status. */
export function sendError(reply: FastifyReply, code: HttpErrorCode, message: string | undefined, requestId: string): FastifyReply {
  return reply.status(ERROR_CATALOGUE[code].status).send(errorBody(code, message, requestId));
}

/**
 * A refusal made by the HTTP layer (415, too many files, bad file names, ...), answered
 * at the catalogue's status for its code. `message` (default: the code's public
 * message) is shown to the client, so it must name no paths or secrets.
 */
export class HttpError extends Error {
  /** The status, from the catalogue. */
  readonly statusCode: number;

  constructor(
    readonly code: HttpErrorCode,
    message: string = ERROR_CATALOGUE[code].message,
  ) {
    super(message);
    this.statusCode = ERROR_CATALOGUE[code].status;
  }
}

/**
 * The error shape as a JSON schema, with the catalogue's codes as an enum: a shared
 * schema (`$ref: 'StowageError#'`) that every documented route's 4xx and 5xx answers
 * reference, so the OpenAPI document lists the codes.
 */
export const ERROR_SCHEMA = {
  $id: 'StowageError',
  type: 'object',
  description: 'Every error answer. `message` is meant for end users; the log has the details under `requestId`.',
  required: ['error'],
  properties: {
    error: {
      type: 'object',
      required: ['code', 'message', 'requestId'],
      properties: {
        code: { type: 'string', enum: HTTP_ERROR_CODES },
        message: { type: 'string' },
        requestId: { type: 'string' },
      },
    },
  },
} as const;

/** The name of a shared schema in the OpenAPI document: its `$id` (`StowageError`), as @fastify/swagger's `buildLocalReference`. */
export function componentName(schema: { $id?: unknown }, _baseUri: unknown, _fragment: unknown, index: number): string {
  return typeof schema.$id === 'string' ? schema.$id : `def-${index}`;
}

/** The response schemas of a route's error answers, for its `schema.response`. */
export const ERROR_RESPONSES = { '4xx': { $ref: 'StowageError#' }, '5xx': { $ref: 'StowageError#' } } as const;
