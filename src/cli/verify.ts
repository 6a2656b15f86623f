/**
 * `stowage verify <location>`: re-reads every object and checks its bytes against the
 * SHA-256 stored with it. Reports mismatches (exit 1) and objects stored without a digest.
 */
import type { Command } from 'commander';
import type { Runner } from './runner.js';
import { EXIT, formatBytes, output, parseCount, parseRef, plural, progressBar } from './shared.js';

/** Registers `verify`. */
export function registerVerify(program: Command, run: Runner): void {
  program
    .command('verify')
    .argument('[location]', 'a location or <location>#<prefix> (default: the default location)')
    .option('-c, --concurrency <n>', 'objects read at once', '8')
    .description('re-read every object and compare it with its stored SHA-256')
    .action(
      run<{ concurrency: string }>(async ({ opts, locations }, target = '') => {
        const ref = parseRef(target);
        const storage = locations.storage(ref.location);
        const concurrency = parseCount(opts.concurrency, '--concurrency', 1, 256);
        const [{ forEachConcurrently }, { digestOf }] = await Promise.all([import('../core/concurrency.js'), import('../migrate/migrate.js')]);
        const total = process.stderr.isTTY ? await storage.usage({ prefix: ref.path }) : undefined;
        const bar = progressBar('verify', total?.objects ?? 0, total?.bytes);
        const mismatched: { key: string; stored: string; actual: string }[] = [];
        const noDigest: string[] = [];
        let checked = 0;
        let bytes = 0;
        await forEachConcurrently(storage.listAll({ prefix: ref.path }), concurrency, async (info) => {
          if (info.sha256 === undefined) noDigest.push(info.key);
          else {
            // The bar moves within large objects too; `bytes` counts what was read.
            let seen = 0;
            const actual = await digestOf(storage, info.key, (p) => {
              bytes += p.bytes - seen;
              seen = p.bytes;
              bar.update(checked, bytes);
            });
            bytes += actual.size - seen;
            if (actual.sha256 !== info.sha256) mismatched.push({ key: info.key, stored: info.sha256, actual: actual.sha256 });
          }
          bar.update(++checked, bytes);
        });
        bar.stop();
        output(opts, { checked, bytes, mismatched, noDigest }, () =>
          [
            `checked ${plural(checked, 'object')} (${formatBytes(bytes)} read): ${mismatched.length} mismatched, ${noDigest.length} without a stored digest`,
            ...mismatched.map((m) => `MISMATCH ${m.key}: stored sha256 ${m.stored}, read ${m.actual}`),
            ...noDigest.map((k) => `no digest ${k}`),
          ].join('\n'),
        );
        return mismatched.length > 0 ? EXIT.failed : EXIT.ok;
      }),
    );
}
