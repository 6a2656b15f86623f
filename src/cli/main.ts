#!/usr/bin/env node
/**
 * The `stowage` command: object commands, migration and clean-up over any storage
 * location. Each command lives in its own file and runs through runner.ts, which turns
 * errors into a one-line reason on stderr and a distinct exit code; program.ts wires
 * them up. This file only prepares the process, so that it stays quick to start.
 */
import module from 'node:module';
import { packageVersion } from './version.js';

// The AWS SDK's multi-line notice that its later releases need Node 22 is for whoever
// maintains the installation (the README says it), not for each command's output.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
// On Node 22.1+, keep the compiled code of Stowage and its dependencies on disk
// (os.tmpdir()/node-compile-cache), so later commands start faster. A CLI owns its process;
// the library itself never does this.
(module as { enableCompileCache?: () => unknown }).enableCompileCache?.();

const args = process.argv.slice(2);
if (args.length === 1 && (args[0] === '--version' || args[0] === '-V')) {
  // Asked alone (as scripts and installers do), the version needs neither commander nor any command.
  process.stdout.write(`${packageVersion()}\n`);
} else {
  const { runProgram } = await import('./program.js');
  await runProgram();
}
