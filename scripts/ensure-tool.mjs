// Installs a Debian package when the command a test or benchmark needs is missing: with
// apt-get when we are root, else it stops and prints the command to run.
import { execFileSync, spawnSync } from 'node:child_process';

/** Makes sure `bin` is on PATH, installing Debian's `pkg` for it when missing and root. */
export function ensureTool(bin, pkg) {
  if (spawnSync('sh', ['-c', `command -v ${bin}`]).status === 0) return;
  if (process.getuid?.() !== 0) throw new Error(`${bin} is missing: run  sudo apt-get install -y ${pkg}`);
  execFileSync('sh', ['-c', `apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends ${pkg}`], { stdio: 'inherit' });
}
