/** What every route module receives, and the access check they share. */
import type { FastifyRequest } from 'fastify';
import type { Storage } from '../../core/storage.js';
import { authorize, type Authenticator, type Permission } from '../auth.js';

/** Shared settings of the routes. */
export interface RouteContext {
  storage: Storage;
  /** Secret of the signed `/files/` links (fs and memory backends). */
  signingSecret?: string;
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
