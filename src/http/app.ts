/**
 * The HTTP service as a Fastify plugin (`stowageRoutes`, to mount in your own app) and
 * an app factory (`buildApp`) that is separate from listening, so tests and embedders
 * control the server. The plugin carries what protects every use of the routes (inert
 * object responses, the host check); the app adds what belongs to a whole server (CORS,
 * timeouts and the connection cap), which an embedding app decides for itself.
 */
import Fastify, { LogController, type FastifyInstance, type FastifyPluginAsync, type FastifyServerOptions } from 'fastify';
import multipart from '@fastify/multipart';
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import { randomBytes } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { createRequire } from 'node:module';
import { Registry } from 'prom-client';
import type { Storage } from '../core/storage.js';
import type { WriteResult } from '../core/types.js';
import { outboxMetrics, quotaMetrics, storageMetrics, withMetrics } from '../layers/metrics.js';
import { outboxOf } from '../layers/outbox/control.js';
import { quotaOf } from '../layers/quota/control.js';
import type { Authenticator } from './auth.js';
import { installCors, parseCorsOrigins } from './cors.js';
import { componentName, ERROR_SCHEMA, sendError } from './catalogue.js';
import { installErrorHandlers, replyWithError } from './errors.js';
import { endpointGuard } from './guards.js';
import { installHostCheck, type AllowedHosts } from './hosts.js';
import { DEFAULT_MAX_UPLOAD_SIZE } from './deferred.js';
import { lazyChildLogger } from './logging.js';
import { installMetrics } from './metrics.js';
import type { RouteContext } from './routes/context.js';
import { fileRoutes, linkVerifier } from './routes/files.js';
import { formRoutes } from './routes/forms.js';
import { healthRoutes } from './routes/health.js';
import { objectRoutes } from './routes/objects.js';
import { presignRoutes } from './routes/presign.js';
import { usageRoutes } from './routes/usage.js';
import { compilePolicies, defaultUploadPolicies, uploadRoutes, type UploadPolicies } from './routes/uploads.js';
import { tusRoutes } from './tus/routes.js';
import { consoleRoutes } from './console.js';
import { headerTimeoutOptions, limitServer, resolveServerLimits, type ServerLimits } from './timeouts.js';

/** The package version, shown in the OpenAPI document. */
const PACKAGE_VERSION = (createRequire(import.meta.url)('../../package.json') as { version: string }).version;

/** Options of the routes plugin. */
export interface StowageRoutesOptions {
  /**
   * The storage served; its `signingSecret` (and `baseUrl`) are what the signed `/files/`
   * links are issued and verified with. With an outbox (`createStorage({ outbox })`)
   * uploads it queues are answered 202, and its state is in health and metrics.
   */
  storage: Storage<WriteResult>;
  /**
   * @deprecated Give the secret to the storage (`signingSecret`, STORAGE_SIGNING_SECRET)
   * instead. Still accepted: equal to the storage's it changes nothing; on a storage
   * without a secret the routes verify `/files/` links with it (that storage still
   * cannot issue any); different from the storage's, registration fails with
   * E_CONFIG_INVALID, since every link would be refused.
   */
  signingSecret?: string;
  /** Largest upload accepted, in bytes (default 5 GiB). */
  maxUploadSize?: number;
  /** API keys (see auth.ts); without them every request is allowed. */
  auth?: Authenticator;
  /**
   * Named upload templates and their policies for `POST /api/uploads`. Default: one
   * template, `default`, storing any type that cannot run as a page under
   * `uploads/{date}/{uuid}.{ext}`; `{}` turns the route off.
   */
  uploadPolicies?: UploadPolicies;
  /**
   * Host names (with an optional `:port`) to answer besides the loopback names, against
   * DNS rebinding. Without `auth` only loopback names and these are answered (403
   * `E_HOST_NOT_ALLOWED` otherwise); with `auth` every name unless this lists some.
   * `'any'` turns the check off, for an app that checks `Host` itself.
   */
  allowedHosts?: AllowedHosts;
}

/**
 * The Stowage routes. Request bodies of uploads stay raw streams (never buffered or
 * parsed), so this plugin replaces the content-type parsers in its own scope only.
 */
export const stowageRoutes: FastifyPluginAsync<StowageRoutesOptions> = async (app, opts) => {
  const ctx: RouteContext = { storage: opts.storage, maxUploadSize: opts.maxUploadSize ?? DEFAULT_MAX_UPLOAD_SIZE, auth: opts.auth };
  // Before any route: a secret that contradicts the storage's fails registration.
  const verifyLink = linkVerifier(opts.storage, opts.signingSecret);
  installErrorHandlers(app);
  app.addSchema(ERROR_SCHEMA);
  installHostCheck(app, { authenticated: opts.auth !== undefined, allowedHosts: opts.allowedHosts });
  await app.register(healthRoutes, ctx);
  await app.register(presignRoutes, ctx);
  await app.register(usageRoutes, ctx);
  const policies = compilePolicies(opts.uploadPolicies ?? defaultUploadPolicies(ctx.maxUploadSize));
  const { sessions, internalFiles } = opts.storage.capabilities;
  await app.register(async (raw) => {
    raw.removeAllContentTypeParsers();
    raw.addContentTypeParser('*', (_request, payload, done) => done(null, payload));
    await objectRoutes(raw, ctx);
    // Whether or not the storage can sign: without a secret a link is answered with what to configure, not a 404.
    // A backend that signs its own links (S3) still gets the service's links to image variants, which only the service renders.
    if (!opts.storage.capabilities.nativeSignedUrls) await fileRoutes(raw, { ...ctx, verifyLink });
    else if (opts.storage.variants.enabled) await fileRoutes(raw, { ...ctx, verifyLink, variantsOnly: true });
  });
  // tus: its own scope, for the headers every answer of it carries.
  if (policies.size > 0 && sessions && internalFiles) {
    await app.register(async (tus) => {
      tus.removeAllContentTypeParsers();
      tus.addContentTypeParser('*', (_request, payload, done) => done(null, payload));
      await tusRoutes(tus, { ...ctx, policies });
    });
  }
  const signedForms = !opts.storage.capabilities.nativePresignPost;
  if (policies.size > 0 || signedForms) {
    await app.register(async (forms) => {
      await forms.register(multipart);
      if (policies.size > 0) await uploadRoutes(forms, { ...ctx, policies });
      if (signedForms) await formRoutes(forms, { ...ctx, verifyLink });
    });
  }
};

/** Options of {@link buildApp}; the {@link ServerLimits} apply to its server. */
export interface BuildAppOptions extends StowageRoutesOptions, ServerLimits {
  /** Fastify's logger option (pino); default on, at level info. */
  logger?: FastifyServerOptions['logger'];
  /** Serve `/metrics` and measure storage operations (default true). */
  metrics?: boolean;
  /** The registry `/metrics` serves (default a new one), so the caller can add its own metrics (the lifecycle's). */
  metricsRegistry?: Registry;
  /** Log every request and response (default true); errors are logged either way. */
  accessLog?: boolean;
  /** Serve the web console at `/console/` (default true; STOWAGE_CONSOLE=false). */
  console?: boolean;
  /**
   * Origins (`https://app.example.com`) whose pages may use the API and signed links;
   * `'*'` lets any origin make the reads that need no credentials (see cors.ts).
   */
  corsOrigins?: readonly string[];
}

/** The names of the {@link ServerLimits} options, for messages. */
const LIMIT_OPTIONS = { bodyIdleTimeoutMs: 'bodyIdleTimeoutMs', headersTimeoutMs: 'headersTimeoutMs', keepAliveTimeoutMs: 'keepAliveTimeoutMs', maxConnections: 'maxConnections' };

/** Where the request id of a raw request is kept, so the timeouts answer under the id the app logs. */
const REQUEST_ID = Symbol('stowage.requestId');
type WithRequestId = IncomingMessage & { [REQUEST_ID]?: string };

/**
 * Fastify's logging without the access log: no line for each request and response, but
 * errors Fastify meets on the way (failed responses, broken streams) are still logged.
 */
class NoAccessLog extends LogController {
  override incomingRequest(): void {}

  override requestCompleted(...args: Parameters<LogController['requestCompleted']>): void {
    if (args[0]) super.requestCompleted(...args);
  }
}

/** Builds the service without listening. */
export async function buildApp(opts: BuildAppOptions): Promise<FastifyInstance> {
  const limits = resolveServerLimits(opts, LIMIT_OPTIONS);
  const corsOrigins = opts.corsOrigins && parseCorsOrigins(opts.corsOrigins, 'corsOrigins');
  // Request ids unique across processes (a random prefix) yet cheap per request (a counter).
  const idPrefix = randomBytes(6).toString('base64url');
  let requests = 0;
  const generateId = (req: WithRequestId) => (req[REQUEST_ID] ??= `${idPrefix}-${(++requests).toString(36)}`);
  const app = Fastify({
    logger: opts.logger ?? { level: 'info' },
    logController: opts.accessLog === false ? new NoAccessLog() : undefined,
    http: headerTimeoutOptions(limits),
    keepAliveTimeout: limits.keepAliveTimeoutMs,
    // Request ids in every log line and error body.
    requestIdHeader: 'x-request-id',
    genReqId: generateId,
    childLoggerFactory: lazyChildLogger,
    // Keys may be long and full of encoded characters.
    routerOptions: { maxParamLength: 4096 },
    // Requests the router cannot even read (malformed percent-encoding) get our error shape too.
    frameworkErrors: (err, request, reply) => {
      void sendError(reply, 'E_INVALID_ARGUMENT', `bad request: ${err.message}`, request.id);
    },
  });
  // The id Fastify gives a request: the client's x-request-id, else ours.
  // (Node joins a repeated x- header into one string.)
  limitServer(app.server, limits, (req) => (req.headers['x-request-id'] as string | undefined) || generateId(req));
  let storage = opts.storage;
  if (opts.metrics !== false) {
    const registry = opts.metricsRegistry ?? new Registry();
    // First, so that every route after it is labelled in the request metrics.
    installMetrics(app, registry, endpointGuard(opts.auth, 'metrics'));
    const measured = storageMetrics(registry);
    storage = storage.withDriver((driver) => withMetrics(driver, measured));
    const outbox = outboxOf(storage.driver);
    if (outbox) outboxMetrics(registry, outbox);
    const quota = quotaOf(storage.driver);
    if (quota) quotaMetrics(registry, quota);
  }
  // The app's own routes (CORS preflights, /metrics, /docs) answer only catalogued codes too.
  app.setErrorHandler(replyWithError);
  // For every route of the app (the docs and /metrics too); the routes need not check again.
  installHostCheck(app, { authenticated: opts.auth !== undefined, allowedHosts: opts.allowedHosts });
  if (corsOrigins && corsOrigins.length > 0) await installCors(app, { origins: corsOrigins, authenticated: opts.auth !== undefined });
  // OpenAPI from the route schemas; registered before the routes so it sees them all.
  await app.register(swagger, {
    openapi: { info: { title: 'Stowage', description: 'Object storage over HTTP: uploads, downloads, listings and presigned transfers.', version: PACKAGE_VERSION } },
    refResolver: { buildLocalReference: componentName },
  });
  // With auth, the API description needs the docs permission (or `public: ["docs"]`).
  const docsGuard = endpointGuard(opts.auth, 'docs');
  await app.register(swaggerUi, { routePrefix: '/docs', uiHooks: { onRequest: docsGuard } });
  if (opts.console !== false) await app.register(consoleRoutes);
  app.get('/openapi.json', { schema: { hide: true }, onRequest: docsGuard }, async () => app.swagger());
  await app.register(stowageRoutes, { ...opts, storage, allowedHosts: 'any' });
  return app;
}
