/** `stowage stat <key>`: everything stored about one object. */
import type { Command } from 'commander';
import type { Runner } from './runner.js';
import { columns, formatBytes, output, parseRef } from './shared.js';

/** Registers `stat`. */
export function registerStat(program: Command, run: Runner): void {
  program
    .command('stat')
    .argument('<key>', 'a key in the default location, or <location>#<key>')
    .description("show an object's size, type, digest, dates and metadata")
    .action(
      run(async ({ opts, locations }, key = '') => {
        const ref = parseRef(key);
        const info = await locations.storage(ref.location).stat(ref.path);
        const json = { ...info, lastModified: info.lastModified.toISOString() };
        output(opts, json, () =>
          columns([
            ['key', info.key],
            ['size', `${formatBytes(info.size)} (${info.size} bytes)`],
            ['type', info.contentType],
            ['modified', info.lastModified.toISOString()],
            ['etag', info.etag],
            ['sha256', info.sha256 ?? '(none stored)'],
            ...(info.cacheControl ? [['cache-control', info.cacheControl]] : []),
            ...(info.contentDisposition ? [['disposition', info.contentDisposition]] : []),
            ...Object.entries(info.metadata).map(([k, v]) => [`meta ${k}`, v]),
          ]),
        );
      }),
    );
}
