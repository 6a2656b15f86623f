/** `stowage du [prefix]`: how many objects and bytes lie under a prefix. */
import type { Command } from 'commander';
import type { Runner } from './runner.js';
import { formatBytes, output, parseRef, plural } from './shared.js';

/** Registers `du`. */
export function registerDu(program: Command, run: Runner): void {
  program
    .command('du')
    .argument('[prefix]', 'a prefix in the default location, or <location>#<prefix>')
    .description('count the objects and bytes under a prefix')
    .action(
      run(async ({ opts, locations }, target = '') => {
        const ref = parseRef(target);
        const usage = await locations.storage(ref.location).usage({ prefix: ref.path });
        output(opts, { prefix: ref.path, ...usage }, () => `${plural(usage.objects, 'object')}, ${formatBytes(usage.bytes)} (${plural(usage.bytes, 'byte')}) under ${ref.path === '' ? '(everything)' : ref.path}`);
      }),
    );
}
