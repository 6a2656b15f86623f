/**
 * Host checks against DNS rebinding. A web page on any site can make its own host name
 * resolve to 127.0.0.1 and then talk to a service on this machine as if it were its own
 * origin: the browser sends that name as `Host`. Without API keys nothing else stands
 * in the way, so the service then answers only loopback names (which no other site can
 * use) and the names the operator allows. With API keys an allow-list is optional.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { isIP } from 'node:net';
import { StorageError } from '../core/errors.js';
import { sendError } from './catalogue.js';

/** Host names, with an optional `:port`, or `'any'` (no check). */
export type AllowedHosts = readonly string[] | 'any';

/** The names a page on another site can never make its own: loopback names and literals. */
function isLoopbackName(name: string): boolean {
  return name === 'localhost' || name === '[::1]' || (isIP(name) === 4 && name.startsWith('127.'));
}

/** Splits `name[:port]` (IPv6 in brackets) into a lowercased name and the port text. */
function splitHost(host: string): { name: string; port?: string } | undefined {
  const m = /^(\[[0-9a-f:.]+\]|[^:[\]]+)(?::(\d{1,5}))?$/i.exec(host);
  return m ? { name: (m[1] as string).toLowerCase(), port: m[2] } : undefined;
}

/** Checks allow-list entries (names with an optional port); a bad one fails naming `source`. */
export function parseAllowedHosts(entries: readonly string[], source: string): string[] {
  return entries.map((entry) => {
    const parts = splitHost(entry);
    if (!parts || !/^(\[[0-9a-f:.]+\]|[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*)$/.test(parts.name)) {
      throw new StorageError('E_CONFIG_INVALID', `${source}: ${JSON.stringify(entry)} is not a host name such as files.example.com or files.example.com:8443`);
    }
    return parts.port === undefined ? parts.name : `${parts.name}:${parts.port}`;
  });
}

/** What the check answers, given whether API keys are required and the allow-list. */
interface HostPolicy {
  authenticated: boolean;
  allowed?: readonly string[];
}

/** Whether a request's `Host` passes the policy. A request without one cannot come from a browser. */
export function hostAllowed(host: string | undefined, policy: HostPolicy): boolean {
  if (host === undefined) return true;
  const parts = splitHost(host);
  if (!parts) return false;
  if (isLoopbackName(parts.name)) return true;
  if (policy.allowed === undefined) return policy.authenticated;
  return policy.allowed.includes(parts.name) || (parts.port !== undefined && policy.allowed.includes(`${parts.name}:${parts.port}`));
}

/**
 * Refuses, before anything else runs, requests whose `Host` the policy does not allow:
 * 403 `E_HOST_NOT_ALLOWED`. `allowedHosts` 'any' turns the check off, and so do API keys
 * without an allow-list.
 */
export function installHostCheck(app: FastifyInstance, opts: { authenticated: boolean; allowedHosts?: AllowedHosts }): void {
  if (opts.allowedHosts === 'any') return;
  const policy: HostPolicy = { authenticated: opts.authenticated, allowed: opts.allowedHosts && parseAllowedHosts(opts.allowedHosts, 'allowedHosts') };
  if (policy.authenticated && policy.allowed === undefined) return;
  const rule = policy.authenticated ? 'this service answers only loopback names and the host names it is configured with' : 'without API keys this service answers only localhost, 127.0.0.1, [::1] and the host names it is configured with';
  app.addHook('onRequest', (request: FastifyRequest, reply: FastifyReply, done) => {
    const host = request.headers.host;
    if (hostAllowed(host, policy)) return done();
    // Answered here rather than through the error handler, which would drain a short
    // body: a refused host's body is never read, so the connection closes after the answer.
    const message = `host ${JSON.stringify(host)} is not allowed: ${rule} (STOWAGE_ALLOWED_HOSTS, or allowedHosts in code)`;
    request.log.info({ code: 'E_HOST_NOT_ALLOWED', host }, message);
    if (!request.raw.complete) void reply.header('connection', 'close');
    void sendError(reply, 'E_HOST_NOT_ALLOWED', message, request.id);
  });
}
