// Types for scripts/redis-server.mjs, so TypeScript tests and benchmarks can import it.
export interface RedisServer {
  env: Record<string, string>;
  stop: () => void;
  error?: string;
}
export function ensureRedisServer(baseEnv?: Record<string, string | undefined>): RedisServer;

/** A redis-server of one test's own, to stop and start again on the same port. */
export interface PrivateRedisServer {
  url: string;
  port: number;
  stop: () => void;
  start: () => void;
  /** Freezes the server (SIGSTOP): its connections stay open and nothing answers. */
  pause: () => void;
  /** Thaws a paused server (SIGCONT). */
  resume: () => void;
}
export function privateRedisServer(): PrivateRedisServer;
