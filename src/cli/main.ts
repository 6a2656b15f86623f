#!/usr/bin/env node
/**
 * The `stowage` command: object commands, migration and clean-up over any storage
 * location. Each command lives in its own file; this one wires them up, turns errors
 * into a one-line reason on stderr and a distinct exit code (see shared.ts).
 */
import { createRequire } from 'node:module';
import { Command, CommanderError } from 'commander';
import { isStorageError } from '../core/errors.js';
import { registerCopy } from './cp.js';
import { registerDu } from './du.js';
import { registerGc } from './gc.js';
import { registerHealth } from './health.js';
import { registerLs } from './ls.js';
import { registerMigrate } from './migrate.js';
import { registerGet } from './get.js';
import { registerStat } from './stat.js';
import { registerPresign } from './presign.js';
import { registerPut } from './put.js';
import { registerRm } from './rm.js';
import { registerServe } from './serve.js';
import { registerVerify } from './verify.js';
import { CliError, errorCodeOf, EXIT, exitCodeOf, Locations, type GlobalOptions } from './shared.js';

/** What a command's action receives: its options merged with the global ones, and the open locations. */
export interface CommandContext<O = Record<string, unknown>> {
  opts: GlobalOptions & O;
  locations: Locations;
}

/** Wraps a command body: opens locations, closes them, and maps errors to exit codes. */
export type Runner = <O>(body: (ctx: CommandContext<O>, ...args: string[]) => Promise<number | void>) => (...args: unknown[]) => Promise<void>;

const run: Runner = (body) => async (...args) => {
  const command = args[args.length - 1] as Command;
  const opts = command.optsWithGlobals<GlobalOptions>();
  const positional = args.slice(0, -2).map((a) => (Array.isArray(a) ? a.join(' ') : (a as string)));
  const locations = new Locations(opts.storage);
  try {
    const code = await body({ opts: opts as never, locations }, ...positional);
    process.exitCode = code ?? EXIT.ok;
  } catch (err) {
    reportError(err, opts.json === true);
    process.exitCode = exitCodeOf(err);
  } finally {
    await locations.close().catch(() => undefined);
  }
};

/**
 * Writes why a command failed to stderr: `stowage: <reason>`, or with `--json` one JSON
 * object `{ "code", "message" }` (a StorageError code, or E_USAGE / E_FAILED for the
 * command line itself), so scripts never parse prose.
 */
function reportError(err: unknown, json: boolean): void {
  const message = isStorageError(err) || err instanceof Error ? err.message : String(err);
  if (json) process.stderr.write(`${JSON.stringify({ code: errorCodeOf(err), message })}\n`);
  else process.stderr.write(`stowage: ${message}\n`);
}

/** True when the command line asks for JSON, known before commander has parsed it. */
const wantsJson = (argv: readonly string[]) => argv.slice(2).includes('--json');

/** Builds the program with every command. */
function program(json: boolean): Command {
  const { version } = createRequire(import.meta.url)('../../package.json') as { version: string };
  const cli = new Command('stowage')
    .description('Object storage for TypeScript and Node.js: inspect storage, move objects between backends, keep it tidy.')
    .version(version)
    .option('-s, --storage <location>', 'the default location: local:./uploads, memory:, s3://bucket/prefix (default: the STORAGE_* environment)')
    .option('--json', 'print machine-readable JSON (errors too: one object on stderr)')
    .showHelpAfterError(json ? false : '(run stowage --help for usage)')
    .exitOverride();
  // commander's own refusals (unknown command or option, missing argument) in the same shape.
  if (json) cli.configureOutput({ outputError: (text) => reportError(new CliError(text.replace(/^error: /, '').trim(), EXIT.usage), true) });
  cli.addHelpText(
    'after',
    `
Objects are named by key in the default location, or as <location>#<key>:
  stowage stat photos/a.jpg
  stowage cp local:./uploads#a.jpg s3://my-bucket#a.jpg

Exit codes: 0 ok, 1 failed, ${EXIT.usage} usage error, ${EXIT.notFound} not found, ${EXIT.unavailable} storage unavailable.`,
  );
  for (const register of [registerServe, registerLs, registerStat, registerGet, registerPut, registerRm, registerCopy, registerDu, registerPresign, registerHealth, registerVerify, registerMigrate, registerGc]) {
    register(cli, run);
  }
  return cli;
}

async function main(): Promise<void> {
  // The AWS SDK's multi-line notice that its later releases need Node 22 is for whoever
  // maintains the installation (the README says it), not for each command's output.
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
  try {
    await program(wantsJson(process.argv)).parseAsync(process.argv);
  } catch (err) {
    if (err instanceof CommanderError) {
      // Help and version exit 0; anything else commander refused is a usage error.
      process.exitCode = err.exitCode === 0 ? EXIT.ok : EXIT.usage;
      return;
    }
    throw err;
  }
}

await main();
