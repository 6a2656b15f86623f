/**
 * Limits on what a client may hold: a request body that stops arriving, headers that
 * never finish, idle keep-alive connections, and the number of connections at once.
 * Without them, a client that sends 10 bytes of a declared 1,000 and goes silent holds a
 * socket and a temp file for ever.
 *
 * Which timer covers which direction: Node's socket timeout counts activity both ways,
 * so it would also cut a download to a slow reader (a socket the client reads slowly
 * sees no activity while its buffer is full). The body idle timeout here watches only
 * bytes arriving, and only while a request body is still arriving; a response is never
 * timed by it.
 */
import { STATUS_CODES, type IncomingMessage, type Server, type ServerOptions, type ServerResponse } from 'node:http';
import { StorageError } from '../core/errors.js';
import { ERROR_CATALOGUE, errorBody } from './catalogue.js';

/** The limits, in milliseconds and connections. */
export interface ServerLimits {
  /** Longest wait for the next byte of a request body (default 30 s); then 408 and nothing is stored. */
  bodyIdleTimeoutMs?: number;
  /** Longest wait for a request's headers to arrive whole (default 30 s); then 408. */
  headersTimeoutMs?: number;
  /** How long an idle keep-alive connection stays open (default 72 s, past the 60 s of common load balancers). */
  keepAliveTimeoutMs?: number;
  /** Most connections at once (default 1000); more are closed as they arrive. */
  maxConnections?: number;
}

/** The defaults of {@link ServerLimits}. */
export const DEFAULT_SERVER_LIMITS: Required<ServerLimits> = { bodyIdleTimeoutMs: 30_000, headersTimeoutMs: 30_000, keepAliveTimeoutMs: 72_000, maxConnections: 1000 };

/** The largest delay a Node timer takes (about 24.8 days). */
const MAX_TIMER_MS = 2 ** 31 - 1;

/** Checks the limits and fills in the defaults; a bad one fails naming `names[field]`. */
export function resolveServerLimits(limits: ServerLimits, names: Record<keyof ServerLimits, string>): Required<ServerLimits> {
  const resolved = { ...DEFAULT_SERVER_LIMITS };
  for (const field of Object.keys(DEFAULT_SERVER_LIMITS) as (keyof ServerLimits)[]) {
    const value = limits[field];
    if (value === undefined) continue;
    if (typeof value !== 'number' || !Number.isInteger(value) || value < 1 || value > MAX_TIMER_MS) {
      throw new StorageError('E_CONFIG_INVALID', `${names[field]} must be a whole number from 1 to ${MAX_TIMER_MS}, got ${JSON.stringify(value)}`);
    }
    resolved[field] = value;
  }
  return resolved;
}

/**
 * Node's own options for the header timeout. Node looks for expired headers every
 * `connectionsCheckingInterval` (30 s by default), so the interval follows the timeout.
 */
export function headerTimeoutOptions(limits: Required<ServerLimits>): ServerOptions {
  return { headersTimeout: limits.headersTimeoutMs, connectionsCheckingInterval: Math.min(30_000, Math.max(100, Math.floor(limits.headersTimeoutMs / 4))) };
}

/** Whether a request announces a body. */
function hasBody(req: IncomingMessage): boolean {
  const length = req.headers['content-length'];
  return (length !== undefined && length !== '0') || req.headers['transfer-encoding'] !== undefined;
}

/**
 * Ends a request whose body stopped arriving: a 408 in our error shape when no answer has
 * started (written as Node writes its own 408s, since the request is still being read),
 * then the connection closes. Destroying the request fails its body stream, so the
 * upload reading it stores nothing and removes its temp file.
 */
function timeOut(req: IncomingMessage, res: ServerResponse, idleMs: number, requestId: string): void {
  const message = `no byte of the request body arrived for ${idleMs} ms`;
  if (!res.headersSent && req.socket.writable) {
    const body = JSON.stringify(errorBody('E_REQUEST_TIMEOUT', `${message}; the upload was not stored`, requestId));
    const { status } = ERROR_CATALOGUE.E_REQUEST_TIMEOUT;
    req.socket.write(`HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\ncontent-type: application/json; charset=utf-8\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`);
  }
  // The marker tells the error handler this was the client's silence, not a slow backend.
  req.destroy(new StorageError('E_TIMEOUT', message, { details: { bodyIdleTimeoutMs: idleMs } }));
}

/**
 * Watches a request body: polled a few times per timeout, it counts as idle only while
 * the client sends nothing *and* nothing waits in the request's buffer. A full buffer
 * means the service is the slow side (say, storage is busy), never the client. A body
 * is cut after `idleMs` to `idleMs * 1.25` without a byte.
 */
function watchBody(req: IncomingMessage, res: ServerResponse, idleMs: number, requestId: () => string): void {
  const socket = req.socket;
  let bytes = socket.bytesRead;
  let lastProgress = Date.now();
  const moved = () => {
    if (socket.bytesRead === bytes && req.readableLength === 0) return false;
    bytes = socket.bytesRead;
    lastProgress = Date.now();
    return true;
  };
  const timer = setInterval(
    () => {
      if (req.complete || socket.destroyed) return clearInterval(timer);
      if (moved() || Date.now() - lastProgress < idleMs) return;
      // Timers run before the event loop reads sockets: after a busy stretch of the
      // process, bytes may be waiting unread. Decide after the next read (setImmediate
      // runs once the loop has polled), so only the client's silence cuts the body.
      setImmediate(() => {
        if (req.complete || socket.destroyed || moved()) return;
        clearInterval(timer);
        timeOut(req, res, idleMs, requestId());
      });
    },
    Math.max(10, Math.floor(idleMs / 4)),
  );
  timer.unref();
  res.once('close', () => clearInterval(timer));
}

/**
 * Applies the limits Node does not take at creation to `server`, and watches every
 * request body for idleness. `requestId` gives the id the app logs the request under.
 */
export function limitServer(server: Server, limits: Required<ServerLimits>, requestId: (req: IncomingMessage) => string): void {
  server.maxConnections = limits.maxConnections;
  // Before the app's own listener, so that the watch starts before any route reads.
  server.prependListener('request', (req: IncomingMessage, res: ServerResponse) => {
    if (!req.complete && hasBody(req)) watchBody(req, res, limits.bodyIdleTimeoutMs, () => requestId(req));
  });
}
