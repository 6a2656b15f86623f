/** What every route module receives, and the checks they share: access, and the query string. */
import type { FastifyRequest } from 'fastify';
import type { Storage } from '../../core/storage.js';
import type { WriteResult } from '../../core/types.js';
import { authorize, type Authenticator, type Permission } from '../auth.js';
import { HttpError } from '../catalogue.js';

/** Shared settings of the routes. */
export interface RouteContext {
  /** Its writes may be queued by an outbox (202) as well as stored (201). */
  storage: Storage<WriteResult>;
  /** Largest upload accepted, in bytes. */
  maxUploadSize: number;
  /** API keys; without them every request is allowed (the server then listens on loopback only). */
  auth?: Authenticator;
}

/**
 * Allows the request to use `permission` on `key` (a key, or a listing prefix), or
 * throws: 401 without valid credentials, 403 outside the key's prefixes or permissions.
 * Anonymous reads of public-read prefixes pass.
 */
export async function guard(ctx: RouteContext, request: FastifyRequest, permission: Permission, key: string): Promise<void> {
  if (!ctx.auth) return;
  const header = request.headers.authorization;
  if (permission === 'read' && header === undefined && ctx.auth.isPublic(key)) return;
  authorize(await ctx.auth.authenticate(header), permission, key);
}

/**
 * Refuses (400) a query string that names a parameter twice or is not valid
 * percent-encoded UTF-8. Fastify's parser would hand over an array for a repeated
 * parameter and keep a malformed value as raw text; either way a route would have to
 * guess what the client meant, and a proxy or cache in front may guess differently.
 */
export function refuseAmbiguousQuery(request: FastifyRequest): void {
  const at = request.url.indexOf('?');
  if (at === -1) return;
  const names = new Set<string>();
  for (const pair of request.url.slice(at + 1).split('&')) {
    if (pair === '') continue;
    let name: string;
    try {
      const [rawName = '', ...rawValue] = pair.replaceAll('+', ' ').split('=');
      name = decodeURIComponent(rawName);
      decodeURIComponent(rawValue.join('='));
    } catch {
      throw new HttpError('E_INVALID_ARGUMENT', `the query parameter ${JSON.stringify(pair.slice(0, 100))} is not valid percent-encoded UTF-8`);
    }
    if (names.has(name)) throw new HttpError('E_INVALID_ARGUMENT', `the query parameter ${JSON.stringify(name.slice(0, 100))} is given more than once`);
    names.add(name);
  }
}
