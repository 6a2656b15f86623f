/**
 * `stowage/http`: the HTTP service. `buildApp()` makes the whole service (without
 * listening), `stowageRoutes` mounts its routes in your own Fastify app, `runServer()`
 * is what `npm start` and `stowage serve` run; `Authenticator` checks API keys and JWTs.
 */
export { buildApp, stowageRoutes, type BuildAppOptions, type StowageRoutesOptions } from './app.js';
export { DEFAULT_MAX_UPLOAD_SIZE } from './deferred.js';
export { runServer } from './server.js';
export { Authenticator, PERMISSIONS, type AuthConfig, type Permission, type Principal } from './auth.js';
export { ERROR_CATALOGUE, HTTP_ERROR_CODES, HTTP_STATUS, type CatalogueEntry, type HttpErrorCode } from './catalogue.js';
