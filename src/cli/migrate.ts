/**
 * `stowage migrate --from <location> --to <location>`: copies every object with its
 * type, metadata and digest; resumable, verifiable, and safe to run again (see
 * src/migrate/migrate.ts for the guarantees).
 */
import type { Command } from 'commander';
import type { Runner } from './runner.js';
import { CliError, EXIT, formatBytes, output, parseCount, parseRef, progressBar } from './shared.js';

interface MigrateFlags {
  from: string;
  to: string;
  prefix?: string;
  concurrency: string;
  dryRun?: boolean;
  verify?: boolean;
  deleteSource?: boolean;
  checkpoint?: string;
}

/** Registers `migrate`. */
export function registerMigrate(program: Command, run: Runner): void {
  program
    .command('migrate')
    .requiredOption('--from <location>', 'where the objects are: local:./uploads, s3://bucket/prefix, ...')
    .requiredOption('--to <location>', 'where they go')
    .option('--prefix <prefix>', 'only objects under this prefix')
    .option('-c, --concurrency <n>', 'objects copied at once', '8')
    .option('--dry-run', 'report what would be copied, write nothing')
    .option('--verify', 're-read every target object and compare digests; copy again on a mismatch')
    .option('--delete-source', 'delete each source object once its copy is verified (implies --verify)')
    .option('--checkpoint <file>', 'record progress here; run the same command again to resume')
    .description('copy every object from one location to another, resumably')
    .action(
      run<MigrateFlags>(async ({ opts, locations }) => {
        const [from, to] = [parseRef(opts.from), parseRef(opts.to)];
        if (from.path !== '' || to.path !== '') throw new CliError('--from and --to take locations; use --prefix to pick objects', EXIT.usage);
        if (opts.from === opts.to) throw new CliError('--from and --to are the same location', EXIT.usage);
        const source = locations.storage(opts.from);
        const target = locations.storage(opts.to);
        const concurrency = parseCount(opts.concurrency, '--concurrency', 1, 256);
        const total = process.stderr.isTTY ? await source.usage({ prefix: opts.prefix }) : undefined;
        const bar = progressBar(opts.dryRun ? 'dry run' : 'migrate', total?.objects ?? 0, total?.bytes);
        const stopping = new AbortController();
        const onSignal = () => stopping.abort();
        process.once('SIGINT', onSignal);
        try {
          const { migrate } = await import('../migrate/migrate.js');
          const report = await migrate(source, target, {
            prefix: opts.prefix,
            concurrency,
            dryRun: opts.dryRun,
            verify: opts.verify,
            deleteSource: opts.deleteSource,
            checkpoint: opts.checkpoint ? { path: opts.checkpoint, identity: { from: opts.from, to: opts.to } } : undefined,
            onProgress: (p) => bar.update(p.objects, p.bytes),
            signal: stopping.signal,
          });
          bar.stop();
          const seconds = report.durationMs / 1000;
          output(opts, report, () =>
            [
              `${report.dryRun ? 'would copy' : 'copied'} ${report.copied}, skipped ${report.skipped} (already there), failed ${report.failed.length}` +
                `${opts.verify || opts.deleteSource ? `, verified ${report.verified}` : ''}${opts.deleteSource ? `, deleted ${report.deleted} from the source` : ''}`,
              `${formatBytes(report.bytes)} in ${seconds.toFixed(1)} s (${formatBytes(report.bytes / Math.max(seconds, 0.001))}/s)${report.serverSide > 0 ? `; ${report.serverSide} copied inside the S3 service` : ''}`,
              ...report.repaired.map((k) => `repaired ${k}: the target read back wrong and was copied again`),
              ...report.failed.map((f) => `FAILED ${f.key}: ${f.reason}`),
              ...(stopping.signal.aborted ? ['interrupted: run the same command again to continue'] : []),
            ].join('\n'),
          );
          return report.failed.length > 0 || stopping.signal.aborted ? EXIT.failed : EXIT.ok;
        } finally {
          bar.stop();
          process.off('SIGINT', onSignal);
        }
      }),
    );
}
