/**
 * `stowage cp <from> <to>` and `stowage mv <from> <to>`: within one location a native
 * copy or rename; across locations a streamed copy with type, metadata and digest
 * (checked on the way), and for mv the source is deleted only after the copy landed.
 */
import type { Command } from 'commander';
import type { ObjectInfo } from '../core/types.js';
import type { Runner } from './runner.js';
import { formatBytes, output, parseRef, transferBar, type Locations } from './shared.js';

async function transfer(locations: Locations, from: string, to: string, move: boolean): Promise<ObjectInfo> {
  const source = parseRef(from);
  const target = parseRef(to);
  const src = locations.storage(source.location);
  const dst = locations.storage(target.location);
  const key = target.path === '' || target.path.endsWith('/') ? `${target.path}${source.path.split('/').pop() ?? ''}` : target.path;
  if (src === dst) return move ? src.move(source.path, key) : src.copy(source.path, key);
  const bar = transferBar(`${move ? 'mv' : 'cp'} ${source.path}`);
  const written = await dst.copyFrom(src, source.path, key, { onProgress: bar.onProgress }).finally(bar.stop);
  if (move) await src.delete(source.path);
  return written;
}

/** Registers `cp` and `mv`. */
export function registerCopy(program: Command, run: Runner): void {
  for (const move of [false, true]) {
    program
      .command(move ? 'mv' : 'cp')
      .argument('<from>', 'a key in the default location, or <location>#<key>')
      .argument('<to>', 'a key, or <location>#<key>; ending in / keeps the file name')
      .description(move ? 'move an object, within or across locations' : 'copy an object, within or across locations')
      .action(
        run(async ({ opts, locations }, from = '', to = '') => {
          const info = await transfer(locations, from, to, move);
          output(opts, { ...info, lastModified: info.lastModified.toISOString() }, () => `${from} -> ${info.key} (${formatBytes(info.size)})`);
        }),
      );
  }
}
