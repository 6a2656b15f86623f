/**
 * What every command shares: naming storage locations and objects, output for people
 * (aligned columns, KiB/MiB) and for scripts (`--json`), exit codes, confirmation and
 * progress bars.
 *
 * A location is a URL: `local:./uploads`, `memory:`, `s3://bucket/prefix` or
 * `s3://KEY:SECRET@host:port/bucket/prefix`. An object (or a prefix) inside one is
 * `<location>#<key>`. A bare key means the default location: `--storage`, else the
 * environment's configuration (STORAGE_URL and friends).
 */
import type * as CliProgress from 'cli-progress';
import { createInterface } from 'node:readline/promises';
import type { StorageConfig } from '../core/config.js';
import { StorageError } from '../core/errors.js';
import { lazyModule } from '../core/lazy.js';
import type { OnProgress } from '../core/progress.js';
import type { Storage } from '../core/storage.js';
import type { WriteResult } from '../core/types.js';

/** cli-progress, required when a command first draws a bar (never for --version or --help). */
const cliProgress = lazyModule<typeof CliProgress>('cli-progress', 'progress bars');

/** Exit codes: distinct for usage (and configuration) errors, missing objects and unreachable backends. */
export const EXIT = { ok: 0, failed: 1, usage: 2, notFound: 3, unavailable: 4 } as const;

/** An error that ends the command with a given exit code and a one-line reason. */
export class CliError extends Error {
  constructor(
    message: string,
    readonly exitCode: number = EXIT.failed,
  ) {
    super(message);
  }
}

/** The exit code for an error a command failed with. */
export function exitCodeOf(err: unknown): number {
  if (err instanceof CliError) return err.exitCode;
  if (!(err instanceof StorageError)) return EXIT.failed;
  switch (err.code) {
    case 'E_NOT_FOUND':
    case 'E_BUCKET_NOT_FOUND': // a bucket, or a local folder, that does not exist
      return EXIT.notFound;
    case 'E_INVALID_KEY':
    case 'E_INVALID_ARGUMENT':
    case 'E_CONFIG_INVALID':
      return EXIT.usage;
    case 'E_UNAVAILABLE':
    case 'E_TIMEOUT':
      return EXIT.unavailable;
    default:
      return EXIT.failed;
  }
}

/** The code of an error a command failed with, for `--json`: the StorageError's, else E_USAGE or E_FAILED by its exit code. */
export function errorCodeOf(err: unknown): string {
  if (err instanceof StorageError) return err.code;
  return exitCodeOf(err) === EXIT.usage ? 'E_USAGE' : 'E_FAILED';
}

/** Options every command accepts. */
export interface GlobalOptions {
  storage?: string;
  json?: boolean;
}

const SCHEME = /^(local:|memory:?|s3(\+https?)?:\/\/)/;

/** A parsed `<location>#<key>` or bare key. */
export interface ObjectRef {
  /** The location URL, or undefined for the default location. */
  location: string | undefined;
  /** The key or prefix inside it ('' when none was given). */
  path: string;
}

/** Splits a command-line operand into location and key. */
export function parseRef(text: string): ObjectRef {
  if (!SCHEME.test(text)) return { location: undefined, path: text };
  const at = text.indexOf('#');
  return at === -1 ? { location: text, path: '' } : { location: text.slice(0, at), path: text.slice(at + 1) };
}

/** The storage factories a command opens locations with (create.ts). */
export interface StorageFactories {
  /** The configured storage; with an outbox when `env` sets STOWAGE_OUTBOX_DIR. */
  createStorageFromEnv: (env: Record<string, string | undefined>) => Storage<WriteResult>;
  createStorageFromUrl: (url: string, env: Record<string, string | undefined>, variable: string) => Storage;
  /** The configuration of a location URL, and the environment its storage reads the rest from. */
  storageConfigFromUrl: (url: string, env: Record<string, string | undefined>, variable: string) => { config: StorageConfig; env: Record<string, string | undefined> };
}

/**
 * The outbox's variables. Only the commands that write for the configured storage
 * (`put`) and `stowage outbox` use the outbox: every other command works on the backend
 * itself, so it runs beside a service that owns the outbox folder.
 */
const OUTBOX_VARIABLES = ['STOWAGE_OUTBOX_DIR', 'STOWAGE_OUTBOX_MAX_BYTES'];

/** The environment without the outbox's variables: a storage made from it has no outbox, so its writes are the backend's own. */
function withoutOutbox(): Record<string, string | undefined> {
  return Object.fromEntries(Object.entries(process.env).filter(([variable]) => !OUTBOX_VARIABLES.includes(variable)));
}

/**
 * Opens storages by location, once each, and closes them all at the end. The factories
 * are given by the runner, which imports them when a command runs: `--version` and
 * `--help` never load the storage code.
 */
export class Locations {
  readonly #open = new Map<string, Storage<WriteResult>>();
  readonly #defaultLocation: string | undefined;
  readonly #factories: StorageFactories;

  constructor(defaultLocation: string | undefined, factories: StorageFactories) {
    this.#defaultLocation = defaultLocation;
    this.#factories = factories;
  }

  /** The storage of a location (undefined: the default one), without the outbox. */
  storage(location: string | undefined): Storage {
    const name = this.#nameOf(location);
    return this.#opened(name, () => (name === '' ? (this.#factories.createStorageFromEnv(withoutOutbox()) as Storage) : this.#factories.createStorageFromUrl(name, process.env, name))) as Storage;
  }

  /**
   * The configuration of a location (undefined: the default one) and the environment it is
   * read with, as `storage(location)` opens it: for what goes with a storage but is not in
   * it, such as its lifecycle lock. Nothing is opened.
   */
  async config(location: string | undefined): Promise<{ config: StorageConfig; env: Record<string, string | undefined> }> {
    const name = this.#nameOf(location);
    if (name !== '') return this.#factories.storageConfigFromUrl(name, process.env, name);
    const env = withoutOutbox();
    // Loaded here, as the storage code is: `--help` and `--version` need none of it.
    const { parseStorageEnv } = await import('../core/config.js');
    return { config: parseStorageEnv(env), env };
  }

  /**
   * The storage to write to at `location`: for the configured storage (no location, no
   * `--storage`) with its outbox when STOWAGE_OUTBOX_DIR (or `outboxDir`) names one, so
   * a write the backend cannot take now is queued there; otherwise `storage(location)`.
   */
  writer(location: string | undefined, outboxDir = process.env.STOWAGE_OUTBOX_DIR): Storage<WriteResult> {
    if (location !== undefined || this.#defaultLocation !== undefined || !outboxDir) return this.storage(location);
    return this.#opened(`outbox:${outboxDir}`, () => this.#factories.createStorageFromEnv({ ...process.env, STOWAGE_OUTBOX_DIR: outboxDir }));
  }

  /** The URL a location is opened by: the one given, else `--storage`, else '' for the configured storage. */
  #nameOf(location: string | undefined): string {
    return location ?? this.#defaultLocation ?? '';
  }

  #opened(name: string, open: () => Storage<WriteResult>): Storage<WriteResult> {
    let storage = this.#open.get(name);
    if (!storage) {
      storage = open();
      this.#open.set(name, storage);
    }
    return storage;
  }

  /** The printable name of a location. */
  label(location: string | undefined): string {
    return location ?? this.#defaultLocation ?? 'the configured storage';
  }

  /** Closes every storage opened. */
  async close(): Promise<void> {
    await Promise.all([...this.#open.values()].map((s) => s.close()));
  }
}

/** A count with its noun for people: `1 object`, `2 objects`. */
export function plural(count: number, noun: string): string {
  return `${count} ${noun}${count === 1 ? '' : 's'}`;
}

/** A byte count for people: `512 B`, `1.5 KiB`, `12.0 MiB`. */
export function formatBytes(bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return unit === 0 ? `${bytes} B` : `${value.toFixed(1)} ${units[unit]}`;
}

/** Rows as aligned columns; columns listed in `right` are right-aligned (numbers). */
export function columns(rows: string[][], right: number[] = []): string {
  const widths: number[] = [];
  for (const row of rows) row.forEach((cell, i) => (widths[i] = Math.max(widths[i] ?? 0, cell.length)));
  return rows.map((row) => row.map((cell, i) => (i === row.length - 1 && !right.includes(i) ? cell : right.includes(i) ? cell.padStart(widths[i] ?? 0) : cell.padEnd(widths[i] ?? 0))).join('  ')).join('\n');
}

/** Writes a result: JSON with `--json`, else the human text. */
export function output(opts: GlobalOptions, json: unknown, human: () => string): void {
  const text = opts.json ? JSON.stringify(json, null, 2) : human();
  if (text !== '') process.stdout.write(`${text}\n`);
}

/**
 * Asks before destructive work on a terminal; `--yes` skips the question. Without a
 * terminal and without `--yes` it refuses, so a script never deletes by accident.
 */
export async function confirm(question: string, yes: boolean | undefined): Promise<void> {
  if (yes) return;
  if (!process.stdin.isTTY || !process.stderr.isTTY) throw new CliError(`${question}: refusing without --yes when not on a terminal`, EXIT.usage);
  const rl = createInterface({ input: process.stdin, output: process.stderr });
  try {
    const answer = await rl.question(`${question} [y/N] `);
    if (!/^y(es)?$/i.test(answer.trim())) throw new CliError('cancelled', EXIT.failed);
  } finally {
    rl.close();
  }
}

/** A progress bar on stderr when it is a terminal; nothing otherwise. */
export interface Progress {
  update(objects: number, bytes: number): void;
  stop(): void;
}

/** Starts a progress bar for `total` objects (and `totalBytes`, when known). */
export function progressBar(label: string, total: number, totalBytes?: number): Progress {
  if (!process.stderr.isTTY) return { update: () => undefined, stop: () => undefined };
  const started = Date.now();
  const bar = new (cliProgress().SingleBar)(
    {
      stream: process.stderr,
      format: `${label} [{bar}] {value}/{total} objects | {done}${totalBytes === undefined ? '' : ` of ${formatBytes(totalBytes)}`} | {rate}/s | ETA {eta_formatted}`,
      hideCursor: true,
      etaBuffer: 50,
    },
  );
  bar.start(total, 0, { done: formatBytes(0), rate: formatBytes(0) });
  return {
    update: (objects, bytes) => bar.update(objects, { done: formatBytes(bytes), rate: formatBytes(bytes / Math.max(0.001, (Date.now() - started) / 1000)) }),
    stop: () => bar.stop(),
  };
}

/**
 * A bar of one transfer's bytes on stderr when it is a terminal, fed by the library's
 * `onProgress`; the total comes with the first report when known. Nothing otherwise.
 */
export function transferBar(label: string): { onProgress?: OnProgress; stop: () => void } {
  if (!process.stderr.isTTY) return { stop: () => undefined };
  const started = Date.now();
  const bar = new (cliProgress().SingleBar)({ stream: process.stderr, format: `${label} [{bar}] {done}{of} | {rate}/s | ETA {eta_formatted}`, hideCursor: true, etaBuffer: 50 });
  let running = false;
  return {
    onProgress: ({ bytes, total }) => {
      const values = { done: formatBytes(bytes), of: total === undefined ? '' : ` of ${formatBytes(total)}`, rate: formatBytes(bytes / Math.max(0.001, (Date.now() - started) / 1000)) };
      if (!running) bar.start(total ?? 0, bytes, values);
      else bar.update(bytes, values);
      running = true;
    },
    stop: () => running && bar.stop(),
  };
}

/** Parses a whole number option within bounds. */
export function parseCount(text: string, option: string, min: number, max: number): number {
  const n = Number(text);
  if (!Number.isInteger(n) || n < min || n > max) throw new CliError(`${option} must be a whole number from ${min} to ${max}, got ${JSON.stringify(text)}`, EXIT.usage);
  return n;
}
