/**
 * `npm start`: the service on the configured storage (the local filesystem by default).
 * Reads HOST (127.0.0.1) and PORT (8080) and the storage variables; a bad value stops
 * start-up with the variable's name. SIGTERM/SIGINT stop accepting, let requests in
 * flight finish up to STOWAGE_SHUTDOWN_TIMEOUT_MS (10 s), then exit.
 * STOWAGE_ACCESS_LOG=false turns off the log lines of every request. Host names
 * (STOWAGE_ALLOWED_HOSTS), CORS (STOWAGE_CORS_ORIGINS), timeouts and the connection cap
 * (LIMIT_VARIABLES) are read here too, and the lifecycle rules (STOWAGE_LIFECYCLE, see
 * lifecycle/env.ts), which run on their schedule until shutdown.
 */
import { randomBytes } from 'node:crypto';
import { realpathSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import { isIP } from 'node:net';
import { createStorageFromEnv } from '../create.js';
import { booleanVariable, parseStorageEnv } from '../core/config.js';
import { isStorageError, type StorageError } from '../core/errors.js';
import { outboxOf } from '../layers/outbox/control.js';
import { quotaOf } from '../layers/quota/control.js';
import { isTemporary } from '../layers/outbox/delivery.js';
import { lifecycleFromEnv, lifecycleLock } from '../lifecycle/env.js';
import { startLifecycle } from '../lifecycle/schedule.js';
import { DURATION_HELP, durationMs } from '../core/durations.js';
import { scheduleReconcile } from '../layers/quota/schedule.js';
import { Registry } from 'prom-client';
import { buildApp } from './app.js';
import { DEFAULT_MAX_UPLOAD_SIZE } from './deferred.js';
import { Authenticator } from './auth.js';
import { parseCorsOrigins } from './cors.js';
import { parseAllowedHosts, type AllowedHosts } from './hosts.js';
import { defaultUploadPolicies, type UploadPolicies } from './routes/uploads.js';
import { resolveServerLimits, type ServerLimits } from './timeouts.js';

/** Thrown for a configuration the server will not start with. */
class StartupError extends Error {}

function port(value: string | undefined): number {
  if (value === undefined || value === '') return 8080;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0 || n > 65535) throw new StartupError(`PORT must be a whole number from 0 to 65535, got ${JSON.stringify(value)}`);
  return n;
}

function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || (isIP(host) === 4 && host.startsWith('127.'));
}

/** The variable of each server limit. */
const LIMIT_VARIABLES: Record<keyof ServerLimits, string> = {
  bodyIdleTimeoutMs: 'STOWAGE_BODY_TIMEOUT_MS',
  headersTimeoutMs: 'STOWAGE_HEADERS_TIMEOUT_MS',
  keepAliveTimeoutMs: 'STOWAGE_KEEP_ALIVE_TIMEOUT_MS',
  maxConnections: 'STOWAGE_MAX_CONNECTIONS',
};

/** The server limits set in `env`; resolveServerLimits checks their range, naming the variable. */
function limitsFromEnv(env: Record<string, string | undefined>): ServerLimits {
  const limits: ServerLimits = {};
  for (const [field, name] of Object.entries(LIMIT_VARIABLES) as [keyof ServerLimits, string][]) {
    const value = env[name];
    if (value === undefined || value === '') continue;
    if (!/^\d{1,10}$/.test(value)) throw new StartupError(`${name} must be a whole number, got ${JSON.stringify(value)}`);
    limits[field] = Number(value);
  }
  resolveServerLimits(limits, LIMIT_VARIABLES);
  return limits;
}

/** A comma-separated list, without blanks; undefined when unset. */
function list(value: string | undefined): string[] | undefined {
  const items = value?.split(',').map((item) => item.trim()).filter((item) => item !== '');
  return items && items.length > 0 ? items : undefined;
}

/**
 * STOWAGE_ALLOWED_HOSTS (`*`: any). Where a list applies (it is set, or there are no API
 * keys), two names the operator already gave count too: the host of STORAGE_PUBLIC_URL
 * (where signed links point), and the address the server listens on when it is an IP
 * literal (no page on another site can send that as its host name).
 */
function allowedHostsFromEnv(env: Record<string, string | undefined>, host: string, authenticated: boolean): AllowedHosts | undefined {
  const configured = list(env.STOWAGE_ALLOWED_HOSTS);
  if (configured?.includes('*')) return 'any';
  if (configured === undefined && authenticated) return undefined;
  const names = parseAllowedHosts(configured ?? [], 'STOWAGE_ALLOWED_HOSTS');
  const literal = isIP(host) === 4 ? host : isIP(host) === 6 ? `[${host}]` : undefined;
  if (literal !== undefined && literal !== '0.0.0.0' && literal !== '[::]' && !isLoopback(host)) names.push(literal);
  // An invalid URL is left to the storage configuration, which names the variable.
  if (env.STORAGE_PUBLIC_URL && URL.canParse(env.STORAGE_PUBLIC_URL)) names.push(new URL(env.STORAGE_PUBLIC_URL).hostname);
  return configured === undefined && names.length === 0 ? undefined : names;
}

/**
 * Starts the service as configured by `env` and stops it on SIGTERM/SIGINT (used by
 * `npm start` and `stowage serve`). A bad configuration rejects with the reason.
 */
export async function runServer(environment: Record<string, string | undefined> = process.env): Promise<void> {
  const env = { ...environment };
  const host = env.HOST || '127.0.0.1';
  const listenPort = port(env.PORT);
  const auth = Authenticator.fromEnv(env);
  // Without API keys, refuse to expose the API beyond this machine by accident.
  if (!auth && !isLoopback(host) && !booleanVariable(env, 'STOWAGE_ALLOW_UNAUTHENTICATED', false)) {
    throw new StartupError(`HOST=${host} would expose the API without authentication; configure API keys (STOWAGE_AUTH_FILE), listen on 127.0.0.1, or set STOWAGE_ALLOW_UNAUTHENTICATED=true behind your own access control`);
  }
  const allowedHosts = allowedHostsFromEnv(env, host, auth !== undefined);
  const corsOrigins = parseCorsOrigins(list(env.STOWAGE_CORS_ORIGINS) ?? [], 'STOWAGE_CORS_ORIGINS');
  const limits = limitsFromEnv(env);
  const lifecycle = lifecycleFromEnv(env);
  let secretNote = '';
  if (!env.STORAGE_SIGNING_SECRET) {
    env.STORAGE_SIGNING_SECRET = randomBytes(32).toString('hex');
    secretNote = ' (random signing secret: signed links end when the server restarts; set STORAGE_SIGNING_SECRET to keep them)';
  }
  // Quota lines go to the service's log once it exists (the storage is made first).
  let quotaLog = (line: string) => console.warn(line);
  const storage = createStorageFromEnv({ ...env, STORAGE_PUBLIC_URL: env.STORAGE_PUBLIC_URL || `http://${host.includes(':') ? `[${host}]` : host}:${listenPort || 8080}` }, { log: (line) => quotaLog(line) });
  const outbox = outboxOf(storage.driver);
  const quota = quotaOf(storage.driver);
  // Opens the counters now (repairing what a crash left): a folder another process holds stops start-up here.
  await quota?.open();
  const reconcileInterval = env.STOWAGE_QUOTA_RECONCILE_INTERVAL ? durationMs(env.STOWAGE_QUOTA_RECONCILE_INTERVAL) : undefined;
  if (env.STOWAGE_QUOTA_RECONCILE_INTERVAL && (reconcileInterval === undefined || reconcileInterval <= 0 || !quota)) {
    throw new StartupError(quota ? `STOWAGE_QUOTA_RECONCILE_INTERVAL must be ${DURATION_HELP}, above 0 (got ${JSON.stringify(env.STOWAGE_QUOTA_RECONCILE_INTERVAL)})` : 'STOWAGE_QUOTA_RECONCILE_INTERVAL is set but STOWAGE_QUOTAS is not');
  }
  // Recovers and takes the outbox folder now: one another process owns stops start-up here.
  const queued = await outbox?.status();
  const config = parseStorageEnv(env);
  let facts: Record<string, unknown> = {};
  let unreachable: StorageError | undefined;
  try {
    facts = await storage.verify({ createBucket: config.backend === 'local' }); // a local root (a fallback's primary too) is created if missing
  } catch (err) {
    // With an outbox, a backend that is down (not misconfigured) is what the outbox is for.
    if (!outbox || !isTemporary(err)) throw err;
    unreachable = err as StorageError;
  }
  let uploadPolicies: UploadPolicies | undefined;
  if (env.STOWAGE_UPLOAD_POLICIES) {
    try {
      uploadPolicies = JSON.parse(env.STOWAGE_UPLOAD_POLICIES) as UploadPolicies;
    } catch (err) {
      throw new StartupError(`STOWAGE_UPLOAD_POLICIES is not valid JSON: ${(err as Error).message}`);
    }
  }
  uploadPolicies ??= defaultUploadPolicies(DEFAULT_MAX_UPLOAD_SIZE);
  const accessLog = booleanVariable(env, 'STOWAGE_ACCESS_LOG', true);
  const consoleOn = booleanVariable(env, 'STOWAGE_CONSOLE', true);
  const metricsRegistry = new Registry();
  const app = await buildApp({ storage, auth, uploadPolicies, accessLog, allowedHosts, corsOrigins, metricsRegistry, console: consoleOn, ...limits });
  quotaLog = (line) => app.log.warn(line);
  const address = await app.listen({ host, port: listenPort });
  const reconciles = quota && reconcileInterval !== undefined ? scheduleReconcile(quota, { intervalMs: reconcileInterval, lock: lifecycleLock(env, config, 'quota-reconcile'), log: app.log }) : undefined;
  const lifecycleRuns = lifecycle && startLifecycle(storage, lifecycle.rules, { ...lifecycle, lock: lifecycleLock(env, config), log: app.log, registry: metricsRegistry });
  const where = unreachable ? 'backend unreachable' : typeof facts.root === 'string' ? `files in ${facts.root}` : typeof facts.bucket === 'string' ? `bucket ${facts.bucket} at ${String(facts.endpoint)}` : 'in memory';
  const access = auth ? 'API keys required' : isLoopback(host) ? 'no authentication (loopback only)' : 'no authentication (STOWAGE_ALLOW_UNAUTHENTICATED)';
  app.log.info(`Stowage listening on ${address}, backend ${storage.backend}, ${where}, ${access}${secretNote}`);
  const templates = Object.entries(uploadPolicies).map(([name, policy]) => `${name} (${policy.template})`);
  if (quota) app.log.info(`quotas on ${quota.matcher.patterns.map((p) => JSON.stringify(p)).join(', ')}, counted in the ${await quota.storeKind()} store`);
  if (outbox && queued) app.log.info(`outbox ${outbox.dir}: ${queued.pending} pending write(s), ${queued.dead} dead letter(s)`);
  if (unreachable) {
    app.log.warn(`the backend is unreachable (${unreachable.code}: ${unreachable.message}); started anyway: uploads are queued in the outbox and answered 202, and delivered once it answers (see /api/storage/health)`);
  }
  app.log.info(`upload templates of POST /api/uploads: ${templates.join(', ') || 'none (the route is off)'}`);
  if (!auth && allowedHosts === undefined && !isLoopback(host)) {
    app.log.warn('without API keys only the host names localhost, 127.0.0.1 and [::1] are answered; list the names clients use in STOWAGE_ALLOWED_HOSTS');
  }

  const deadline = Number(env.STOWAGE_SHUTDOWN_TIMEOUT_MS || 10_000);
  const shutdown = (signal: string) => {
    app.log.info(`${signal}: no new connections; waiting up to ${deadline} ms for requests in flight`);
    const lifecycleStopped = Promise.all([lifecycleRuns?.stop(), reconciles?.stop()]);
    // A keep-alive connection whose request finishes goes idle: close it then, so the
    // server need not wait out the keep-alive timeout. (A request that still arrives on
    // it gets Fastify's 503 with Connection: close.) Polling costs nothing per request,
    // unlike an onSend hook, which costs about 3 us on every request for the whole life
    // of the server.
    const reap = setInterval(() => app.server.closeIdleConnections(), 50);
    reap.unref();
    const force = setTimeout(() => {
      app.log.warn('shutdown deadline passed: closing the remaining connections');
      app.server.closeAllConnections();
    }, deadline);
    force.unref();
    void app.close().then(async () => {
      await lifecycleStopped;
      // Uploads cut off at the deadline still clean up (temp files, S3 aborts) before exit.
      await storage.close();
      process.exit(0);
    });
  };
  process.once('SIGTERM', () => shutdown('SIGTERM'));
  process.once('SIGINT', () => shutdown('SIGINT'));
}

/** The one-line reason a start-up failed, without a stack for configuration errors. */
export function startupFailure(err: unknown): string {
  return err instanceof StartupError || isStorageError(err) ? err.message : String(err instanceof Error ? err.stack : err);
}

// Run when started as a program (npm start), not when imported by the CLI.
if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(realpathSync(process.argv[1])).href) {
  runServer().catch((err: unknown) => {
    console.error(`stowage: cannot start: ${startupFailure(err)}`);
    process.exit(1);
  });
}
