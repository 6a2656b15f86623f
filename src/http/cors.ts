/**
 * CORS for frontends on other origins (`STOWAGE_CORS_ORIGINS`, `corsOrigins` of
 * buildApp), through @fastify/cors. A listed origin may use the whole API and the signed
 * `/files/` links (preflights for PUT, POST, PATCH (tus) and DELETE with any request headers, such as
 * Content-Type or Authorization). `*` opens only reads that need no credentials to any
 * origin: signed `/files/` GET links and, with API keys, objects anyone may read
 * (`publicRead`). Without API keys every `/api/` read is anonymous, so `*` never opens
 * those: any web page could read the whole store. No cookies are involved, so no
 * credentials mode. Responses carry `Vary: Origin`.
 */
import cors, { type FastifyCorsOptions } from '@fastify/cors';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { StorageError } from '../core/errors.js';

/** Response headers a script on another origin may read (besides the CORS-safelisted ones). */
export const EXPOSED_HEADERS = [
  'ETag', 'Content-Range', 'Content-Disposition', 'Accept-Ranges', 'Location', 'X-Request-Id', 'Retry-After', 'WWW-Authenticate', 'Stowage-Variant-Source',
  // tus (the resumable uploads of /api/tus/), and where a finished upload was stored.
  'Stowage-Object-Key', 'Tus-Resumable', 'Tus-Version', 'Tus-Extension', 'Tus-Max-Size', 'Tus-Checksum-Algorithm',
  'Upload-Offset', 'Upload-Length', 'Upload-Defer-Length', 'Upload-Metadata', 'Upload-Expires', 'Upload-Concat',
];

/** How long a browser may cache a preflight answer, in seconds. */
const PREFLIGHT_MAX_AGE = 600;

/** Checks CORS origins: each `scheme://host[:port]` exactly, or `*`; a bad one fails naming `source`. */
export function parseCorsOrigins(entries: readonly string[], source: string): string[] {
  return entries.map((entry) => {
    if (entry === '*') return entry;
    let origin: string | undefined;
    try {
      origin = new URL(entry).origin;
    } catch {
      origin = undefined;
    }
    if (origin !== entry || !/^https?:/.test(entry)) {
      throw new StorageError('E_CONFIG_INVALID', `${source}: ${JSON.stringify(entry)} is not an origin such as https://app.example.com (scheme, host and port only, no path or trailing slash), nor *`);
    }
    return entry;
  });
}

const READS = new Set(['GET', 'HEAD']);

/** The method a request stands for: its own, or the one a preflight asks about. */
function intendedMethod(request: FastifyRequest): string {
  const asked = request.headers['access-control-request-method'];
  return request.method === 'OPTIONS' && typeof asked === 'string' ? asked.toUpperCase() : request.method;
}

/** Whether a request is a read that needs no credentials: a signed link, or (with API keys) a public object. */
function isAnonymousPublicRead(request: FastifyRequest, authenticated: boolean): boolean {
  if (!READS.has(intendedMethod(request))) return false;
  const path = request.url;
  return path.startsWith('/files/') || (authenticated && path.startsWith('/api/objects/'));
}

/** Registers CORS on the app for `origins` (already checked by {@link parseCorsOrigins}). */
export async function installCors(app: FastifyInstance, opts: { origins: readonly string[]; authenticated: boolean }): Promise<void> {
  const named = new Set(opts.origins.filter((o) => o !== '*'));
  const publicReads = opts.origins.includes('*');
  const full: FastifyCorsOptions = { origin: [...named], methods: ['GET', 'HEAD', 'PUT', 'POST', 'PATCH', 'DELETE'], exposedHeaders: EXPOSED_HEADERS, maxAge: PREFLIGHT_MAX_AGE };
  const readOnly: FastifyCorsOptions = { origin: '*', methods: ['GET', 'HEAD'], allowedHeaders: ['Range', 'If-None-Match'], exposedHeaders: EXPOSED_HEADERS, maxAge: PREFLIGHT_MAX_AGE };
  const closed: FastifyCorsOptions = { origin: false };
  await app.register(cors, {
    delegator: (request, done) => {
      const origin = request.headers.origin;
      if (origin !== undefined && named.has(origin)) done(null, full);
      else if (publicReads && isAnonymousPublicRead(request, opts.authenticated)) done(null, readOnly);
      else done(null, closed);
    },
  });
}
