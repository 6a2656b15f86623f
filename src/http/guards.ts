/**
 * Access to the service's own endpoints (`/metrics`, `/docs`, `/openapi.json`): open
 * without auth; with auth, a key with the endpoint's permission, unless the auth
 * configuration lists the endpoint in `public`. These routes live outside the routes
 * plugin, and @fastify/swagger-ui's hooks are callbacks, so the guard answers refusals
 * itself, through the same error handler.
 */
import type { onRequestHookHandler } from 'fastify';
import type { Authenticator, ServiceEndpoint } from './auth.js';
import { replyWithError } from './errors.js';

/** The onRequest hook that lets only allowed requests reach `endpoint`; undefined (no hook) without auth. */
export function endpointGuard(auth: Authenticator | undefined, endpoint: ServiceEndpoint): onRequestHookHandler | undefined {
  if (!auth) return undefined;
  // Callback style, as @fastify/swagger-ui's hook option expects: a refusal answers and never calls done.
  return function guardEndpoint(request, reply, done) {
    auth.authorizeEndpoint(endpoint, request.headers.authorization).then(
      () => done(),
      (err: unknown) => void replyWithError(err as Error, request, reply),
    );
  };
}
