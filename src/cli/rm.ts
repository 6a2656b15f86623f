/** `stowage rm <key>` and `stowage rm -r <prefix>`: deletes, asking first on a terminal. */
import type { Command } from 'commander';
import type { Runner } from './runner.js';
import { CliError, confirm, EXIT, output, parseRef, plural } from './shared.js';

/** Registers `rm`. */
export function registerRm(program: Command, run: Runner): void {
  program
    .command('rm')
    .argument('<key>', 'a key (or with -r a prefix) in the default location, or <location>#<key>')
    .option('-r, --recursive', 'delete every object under the prefix')
    .option('-y, --yes', 'do not ask for confirmation')
    .description('delete an object, or every object under a prefix')
    .action(
      run<{ recursive?: boolean; yes?: boolean }>(async ({ opts, locations }, target = '') => {
        const ref = parseRef(target);
        const storage = locations.storage(ref.location);
        if (opts.recursive) {
          if (ref.path !== '' && !ref.path.endsWith('/') && (await storage.exists(ref.path))) {
            throw new CliError(`${ref.path} is an object; rm -r takes a prefix such as ${ref.path}/`, EXIT.usage);
          }
          const { objects } = await storage.usage({ prefix: ref.path });
          await confirm(`delete ${plural(objects, 'object')} under ${JSON.stringify(ref.path || '(everything)')} in ${locations.label(ref.location)}?`, opts.yes);
          const deleted = await storage.deleteMany({ prefix: ref.path });
          output(opts, { deleted, prefix: ref.path }, () => `deleted ${plural(deleted, 'object')}`);
          return;
        }
        if (ref.path === '') throw new CliError('rm needs a key (use rm -r <prefix> for many)', EXIT.usage);
        await confirm(`delete ${ref.path} from ${locations.label(ref.location)}?`, opts.yes);
        const existed = await storage.exists(ref.path);
        await storage.delete(ref.path);
        output(opts, { deleted: existed ? 1 : 0, key: ref.path }, () => (existed ? `deleted ${ref.path}` : `${ref.path} did not exist`));
      }),
    );
}
