/** The package's version, for `stowage --version` and the program's help. */
import { readFileSync } from 'node:fs';

/** The version in package.json, read directly (importing nothing else). */
export function packageVersion(): string {
  return (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version;
}
