/** `stowage health [location]`: exit 0 when the storage answers, 1 when it does not. */
import type { Command } from 'commander';
import type { Runner } from './runner.js';
import { EXIT, output, parseRef } from './shared.js';

/** Registers `health`. */
export function registerHealth(program: Command, run: Runner): void {
  program
    .command('health')
    .argument('[location]', 'the location to check (default: the default location)')
    .description('check that the storage is reachable (exit 0) or not (exit 1)')
    .action(
      run(async ({ opts, locations }, target) => {
        const location = target === undefined ? undefined : parseRef(target).location ?? target;
        const report = await locations.storage(location).health();
        output(opts, report, () => `${report.ok ? 'ok' : 'UNAVAILABLE'}: ${report.backend} in ${report.latencyMs} ms ${JSON.stringify(report.detail)}`);
        return report.ok ? EXIT.ok : EXIT.failed;
      }),
    );
}
