/**
 * The `stowage` program: every command registered on one commander program, with the
 * global options, the help text and the exit codes. main.ts runs it.
 */
import { Command, CommanderError } from 'commander';
import { registerCopy } from './cp.js';
import { registerDu } from './du.js';
import { registerGc } from './gc.js';
import { registerHealth } from './health.js';
import { registerLs } from './ls.js';
import { registerMigrate } from './migrate.js';
import { registerOutbox } from './outbox.js';
import { registerGet } from './get.js';
import { registerStat } from './stat.js';
import { registerPresign } from './presign.js';
import { registerPut } from './put.js';
import { registerQuota } from './quota.js';
import { registerRm } from './rm.js';
import { registerServe } from './serve.js';
import { registerVariants } from './variants.js';
import { registerVerify } from './verify.js';
import { packageVersion } from './version.js';
import { reportError, run } from './runner.js';
import { CliError, EXIT } from './shared.js';

/** True when the command line asks for JSON, known before commander has parsed it. */
const wantsJson = (argv: readonly string[]) => argv.slice(2).includes('--json');

/** Builds the program with every command. */
function program(json: boolean): Command {
  const version = packageVersion();
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
  for (const register of [registerServe, registerLs, registerStat, registerGet, registerPut, registerRm, registerCopy, registerDu, registerPresign, registerHealth, registerVerify, registerMigrate, registerGc, registerOutbox, registerQuota, registerVariants]) {
    register(cli, run);
  }
  return cli;
}

/** Parses the command line and runs the command it names; sets the exit code. */
export async function runProgram(): Promise<void> {
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

