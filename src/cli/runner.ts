/**
 * How every command runs: its options merged with the global ones, its locations opened
 * and closed again, and a failure turned into a one-line reason on stderr and an exit
 * code. Commands import the {@link Runner} type from here, the program wires `run` in.
 */
import type { Command } from 'commander';
import { isStorageError } from '../core/errors.js';
import { errorCodeOf, EXIT, exitCodeOf, Locations, type GlobalOptions } from './shared.js';

/** What a command's action receives: its options merged with the global ones, and the open locations. */
export interface CommandContext<O = Record<string, unknown>> {
  opts: GlobalOptions & O;
  locations: Locations;
}

/** Wraps a command body: opens locations, closes them, and maps errors to exit codes. */
export type Runner = <O>(body: (ctx: CommandContext<O>, ...args: string[]) => Promise<number | void>) => (...args: unknown[]) => Promise<void>;

/** The one Runner: every command's action goes through it. */
export const run: Runner = (body) => async (...args) => {
  const command = args[args.length - 1] as Command;
  const opts = command.optsWithGlobals<GlobalOptions>();
  const positional = args.slice(0, -2).map((a) => (Array.isArray(a) ? a.join(' ') : (a as string)));
  let locations: Locations | undefined;
  try {
    locations = new Locations(opts.storage, await import('../create.js'));
    const code = await body({ opts: opts as never, locations }, ...positional);
    process.exitCode = code ?? EXIT.ok;
  } catch (err) {
    reportError(err, opts.json === true);
    process.exitCode = exitCodeOf(err);
  } finally {
    await locations?.close().catch(() => undefined);
  }
};

/**
 * Writes why a command failed to stderr: `stowage: <reason>`, or with `--json` one JSON
 * object `{ "code", "message" }` (a StorageError code, or E_USAGE / E_FAILED for the
 * command line itself), so scripts never parse prose.
 */
export function reportError(err: unknown, json: boolean): void {
  const message = isStorageError(err) || err instanceof Error ? err.message : String(err);
  if (json) process.stderr.write(`${JSON.stringify({ code: errorCodeOf(err), message })}\n`);
  else process.stderr.write(`stowage: ${message}\n`);
}
