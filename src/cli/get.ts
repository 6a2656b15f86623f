/**
 * `stowage get <key> [file|-]` and `stowage cat <key>`: an object's bytes to a file
 * (written to a temp file and renamed, so a failed download leaves no partial file) or
 * to stdout.
 */
import { rename, rm } from 'node:fs/promises';
import { createWriteStream } from 'node:fs';
import { basename } from 'node:path';
import { pipeline } from 'node:stream/promises';
import type { Command } from 'commander';
import type { Runner } from './runner.js';
import type { ObjectInfo } from '../core/types.js';
import { formatBytes, output, parseRef, transferBar, type GlobalOptions, type Locations } from './shared.js';

async function download(locations: Locations, key: string, file: string | undefined, opts: GlobalOptions): Promise<void> {
  const ref = parseRef(key);
  if (file === '-' || file === undefined) {
    await pipeline((await locations.storage(ref.location).getStream(ref.path)).stream, process.stdout);
    return;
  }
  const bar = transferBar(`get ${basename(ref.path)}`);
  const temp = `${file}.stowage-${process.pid}.part`;
  let info: ObjectInfo;
  try {
    const reader = await locations.storage(ref.location).getStream(ref.path, { onProgress: bar.onProgress });
    info = reader.info;
    await pipeline(reader.stream, createWriteStream(temp, { flags: 'wx' }));
    await rename(temp, file);
  } catch (err) {
    await rm(temp, { force: true });
    throw err;
  } finally {
    bar.stop();
  }
  output(opts, { key: info.key, file, size: info.size, sha256: info.sha256 }, () => `${info.key} -> ${file} (${formatBytes(info.size)})`);
}

/** Registers `get` and `cat`. */
export function registerGet(program: Command, run: Runner): void {
  program
    .command('get')
    .argument('<key>', 'a key in the default location, or <location>#<key>')
    .argument('[file]', 'where to write it; - for stdout (default: the key\'s file name in the current folder)')
    .description('download an object to a file or stdout')
    .action(run(async ({ opts, locations }, key = '', file) => download(locations, key, file ?? basename(parseRef(key).path), opts)));
  program
    .command('cat')
    .argument('<key>', 'a key in the default location, or <location>#<key>')
    .description('write an object to stdout')
    .action(run(async ({ opts, locations }, key = '') => download(locations, key, '-', opts)));
}
