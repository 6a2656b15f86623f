/**
 * One connection to Redis for the quota store and the run lock, with the failure model
 * both need: a call while Redis is down or unreachable rejects within about two seconds
 * with a retryable E_UNAVAILABLE, never waits in a queue, and the connection comes back
 * on its own once Redis does. ioredis is loaded on first use, so importing Stowage never
 * loads it.
 */
import type * as IORedis from 'ioredis';
import { errorMessage, StorageError } from '../../core/errors.js';
import { lazyModule } from '../../core/lazy.js';

const ioredis = lazyModule<typeof IORedis>('ioredis', 'the Redis quota store and run lock');

/** How long a call waits for Redis (to connect, or to answer) before it rejects. */
const WAIT_MS = 1500;

/** A script to register with `RedisConnection.define`: Lua, run atomically by Redis. */
export interface LuaScript {
  name: string;
  lua: string;
}

/** A value a Lua script returns, as ioredis hands it over. */
export type LuaReply = string | number | null | LuaReply[];

/** `host:port` of a Redis URL, for messages: never its user or password. */
export function redisAddress(url: string): string {
  try {
    const u = new URL(url);
    return `${u.hostname || '127.0.0.1'}:${u.port || '6379'}`;
  } catch {
    throw new StorageError('E_CONFIG_INVALID', 'the Redis URL is not a valid URL (expected redis://[user:password@]host[:port][/db])');
  }
}

/** A lazily opened ioredis connection whose calls fail fast and closed. */
export class RedisConnection {
  readonly address: string;
  /** What the connection is for, as messages name it: `quota store`, `run lock`. */
  private readonly what: string;
  private readonly url: string;
  private readonly secret: string;
  private client: IORedis.Redis | undefined;
  private readonly scripts = new Map<string, string>();
  /** Why the last connection attempt failed, for the message of calls made meanwhile. */
  private lastError = 'not connected yet';
  private waiting: Promise<void> | undefined;

  constructor(url: string, what: string) {
    this.url = url;
    this.what = what;
    this.address = redisAddress(url);
    const u = new URL(url);
    this.secret = decodeURIComponent(u.password);
  }

  /** Registers a script; calls run it with EVALSHA (ioredis loads it again after a Redis restart). */
  define(script: LuaScript): void {
    this.scripts.set(script.name, script.lua);
    this.client?.defineCommand(script.name, { numberOfKeys: 0, lua: script.lua });
  }

  /** Runs a registered script with `args` (strings: numbers go as their exact decimal digits). */
  async eval(name: string, args: readonly string[]): Promise<LuaReply> {
    return this.run((client) => (client as unknown as Record<string, (...a: string[]) => Promise<LuaReply>>)[name]!(...args));
  }

  /** Runs `fn` on a ready connection; any failure of Redis or of the way to it becomes E_UNAVAILABLE. */
  async run<T>(fn: (client: IORedis.Redis) => Promise<T>): Promise<T> {
    const client = this.connect();
    await this.ready(client);
    try {
      return await fn(client);
    } catch (err) {
      throw this.failure(err);
    }
  }

  /** Closes the connection; a later call opens a new one. */
  async close(): Promise<void> {
    const client = this.client;
    this.client = undefined;
    this.waiting = undefined;
    if (!client) return;
    await client.quit().catch(() => client.disconnect());
  }

  private connect(): IORedis.Redis {
    if (this.client) return this.client;
    const { Redis } = ioredis();
    const client = new Redis(this.url, {
      connectTimeout: WAIT_MS,
      commandTimeout: WAIT_MS,
      // No queue while disconnected, no resend after a reconnect: a call either runs now
      // or fails now, so a reserve or settle never lands minutes later, after its caller
      // gave up on it and maybe retried it.
      enableOfflineQueue: false,
      autoResendUnfulfilledCommands: false,
      maxRetriesPerRequest: 0,
      // The calls of one tick (the reserves and settles of concurrent writes) go out in one
      // socket write: on a busy machine each write system call, and each wake-up of
      // redis-server it causes, costs more CPU than the script it carries (measured: about
      // a fifth less user CPU per quota-checked PUT, ours and redis-server's).
      enableAutoPipelining: true,
      // Keep trying, soon: the store must work again shortly after Redis is back.
      retryStrategy: (attempt: number) => Math.min(attempt * 50, 500),
    });
    client.on('error', (err: unknown) => {
      this.lastError = errorMessage(err);
    });
    for (const [name, lua] of this.scripts) client.defineCommand(name, { numberOfKeys: 0, lua });
    this.client = client;
    return client;
  }

  /** Resolves once `client` is ready; every call waiting meanwhile shares one wait (and its deadline). */
  private async ready(client: IORedis.Redis): Promise<void> {
    if (client.status === 'ready') return;
    this.waiting ??= new Promise<void>((resolve, reject) => {
      const done = (err?: StorageError) => {
        clearTimeout(timer);
        client.off('ready', onReady);
        client.off('end', onEnd);
        this.waiting = undefined;
        if (err) reject(err);
        else resolve();
      };
      const onReady = () => done();
      const onEnd = () => done(this.unreachable(this.lastError));
      const timer = setTimeout(() => done(this.unreachable(this.lastError)), WAIT_MS);
      client.on('ready', onReady);
      client.on('end', onEnd);
    });
    return this.waiting;
  }

  private failure(err: unknown): StorageError {
    if (err instanceof StorageError) return err;
    const message = errorMessage(err);
    // A reply error is Redis answering (a script refusing its arguments, a wrong
    // password): not a connection that failed, and retrying will not help.
    if ((err as { name?: unknown }).name === 'ReplyError') {
      return new StorageError('E_UNAVAILABLE', `${this.what} (Redis at ${this.address}) failed: ${this.scrub(message)}`, { cause: err, retryable: false, backend: 'redis' });
    }
    return this.unreachable(message, err);
  }

  private unreachable(reason: string, cause?: unknown): StorageError {
    return new StorageError('E_UNAVAILABLE', `${this.what} (Redis at ${this.address}) unreachable: ${this.scrub(reason)}`, { cause, backend: 'redis' });
  }

  /** Removes the URL's password from a message, in case a reason quotes it. */
  private scrub(message: string): string {
    return this.secret ? message.split(this.secret).join('***') : message;
  }
}
