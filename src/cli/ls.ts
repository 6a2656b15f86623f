/** `stowage ls [location#prefix | prefix] [-r]`: objects and folders under a prefix. */
import type { Command } from 'commander';
import type { ObjectInfo } from '../core/types.js';
import type { Runner } from './runner.js';
import { columns, formatBytes, output, parseRef } from './shared.js';

/** Registers `ls`. */
export function registerLs(program: Command, run: Runner): void {
  program
    .command('ls')
    .argument('[prefix]', 'a prefix in the default location, or <location>#<prefix>')
    .option('-r, --recursive', 'list every object under the prefix instead of one level')
    .description('list objects (and, without -r, the folders one level down)')
    .action(
      run<{ recursive?: boolean }>(async ({ opts, locations }, target = '') => {
        const ref = parseRef(target);
        const storage = locations.storage(ref.location);
        const objects: ObjectInfo[] = [];
        const prefixes: string[] = [];
        let cursor: string | undefined;
        do {
          const page = await storage.list({ prefix: ref.path, delimiter: opts.recursive ? undefined : '/', cursor });
          objects.push(...page.objects);
          prefixes.push(...page.prefixes);
          cursor = page.cursor;
        } while (cursor !== undefined);
        output(
          opts,
          { prefixes, objects: objects.map((o) => ({ key: o.key, size: o.size, lastModified: o.lastModified.toISOString(), contentType: o.contentType, etag: o.etag, sha256: o.sha256 })) },
          () =>
            columns(
              [
                ...prefixes.map((p) => ['', '', 'DIR', p]),
                ...objects.map((o) => [o.lastModified.toISOString().slice(0, 19).replace('T', ' '), formatBytes(o.size), o.contentType, o.key]),
              ],
              [1],
            ),
        );
      }),
    );
}
