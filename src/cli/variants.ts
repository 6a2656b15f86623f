/**
 * `stowage variants`: the image variants of a location (see the README's Image variants).
 * - `variants build [prefix]`: renders and stores the variants of every image under a
 *   prefix ahead of requests (`--variant` picks some), each in every format a request
 *   can pick; originals that are not images Stowage renders, or over a limit, are
 *   skipped and listed.
 * - `variants purge`: removes stored variants that can no longer be served (original
 *   deleted or replaced, variant removed or changed), or all with `--all`; a dry run
 *   unless `--yes`.
 * The variants are the location's configuration: STOWAGE_IMAGE_VARIANTS and the rest.
 */
import type { Command } from 'commander';
import { isStorageError } from '../core/errors.js';
import type { Runner } from './runner.js';
import { output, parseRef, plural } from './shared.js';

/** Why an original was skipped, for the report. */
interface Skipped {
  key: string;
  reason: string;
}

/** Registers `variants build` and `variants purge`. */
export function registerVariants(program: Command, run: Runner): void {
  const variants = program.command('variants').description('image variants: build them ahead of requests, purge stored ones that can no longer be served');

  variants
    .command('build')
    .argument('[prefix]', 'the images under a prefix in the default location, or <location>#<prefix> (default: everything)')
    .option('--variant <names...>', 'only these variants (default: every configured one)')
    .description('render and store the variants of every image under a prefix')
    .action(
      run<{ variant?: string[] }>(async ({ opts, locations }, target = '') => {
        const ref = parseRef(target);
        const storage = locations.storage(ref.location);
        const names = opts.variant ?? storage.variants.names;
        for (const name of names) storage.variants.check(name);
        let images = 0;
        let renditions = 0;
        const skipped: Skipped[] = [];
        for await (const info of storage.listAll({ prefix: ref.path })) {
          if (!info.contentType.startsWith('image/')) continue;
          try {
            renditions += (await storage.variants.build(info.key, names)).length;
            images += 1;
          } catch (err) {
            // An original that cannot have variants is reported, not fatal: the rest still get theirs.
            if (!isStorageError(err, 'E_INVALID_ARGUMENT') && !isStorageError(err, 'E_TOO_LARGE')) throw err;
            skipped.push({ key: info.key, reason: err.publicMessage });
          }
        }
        output(opts, { prefix: ref.path, variants: names, images, renditions, skipped }, () =>
          [`built ${names.join(', ')} for ${plural(images, 'image')} (${plural(renditions, 'rendition')} stored or already there)`, ...(skipped.length > 0 ? [`skipped ${skipped.length}:`, ...skipped.map((s) => `  ${s.key}: ${s.reason}`)] : [])].join('\n'),
        );
      }),
    );

  variants
    .command('purge')
    .option('--all', 'every stored variant, not only those that can no longer be served (they are made again on request)')
    .option('-y, --yes', 'remove them (default: only report)')
    .argument('[location]', 'the location (default: the default location)')
    .description('remove stored variants of deleted or replaced originals, or of variants removed or changed')
    .action(
      run<{ all?: boolean; yes?: boolean }>(async ({ opts, locations }, location) => {
        const storage = locations.storage(location);
        const acted = opts.yes === true;
        const report = await storage.variants.purge({ all: opts.all === true, dryRun: !acted });
        output(opts, { acted, ...report }, () => `${acted ? 'removed' : 'would remove'} ${report.removed} of ${plural(report.scanned, 'stored variant')}${acted ? '' : ' (dry run: add --yes to act)'}`);
      }),
    );
}
