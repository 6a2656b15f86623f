/**
 * `stowage quota status|reconcile`: the quotas of the configured storage (STOWAGE_QUOTAS).
 * `status` reads the counters (the embedded store read-only from disk when a running
 * service holds it, so it works beside the service); `reconcile` recomputes usage from a
 * listing, reports the drift per quota folder, and repairs it with `--yes` (a dry run
 * otherwise), which takes the counters: with the embedded store, stop the service first
 * (or let its schedule do it, STOWAGE_QUOTA_RECONCILE_INTERVAL).
 */
import type { Command } from 'commander';
import type { Driver } from '../core/contract.js';
import { isStorageError } from '../core/errors.js';
import { QuotaControl, quotaOf, type QuotaCounterReport } from '../layers/quota/control.js';
import { EmbeddedQuotaStore } from '../layers/quota/embedded-store.js';
import type { CommandContext, Runner } from './runner.js';
import { CliError, columns, EXIT, formatBytes, output, plural } from './shared.js';

interface ReconcileFlags {
  yes?: boolean;
}

/** The quota control of the configured storage and its driver, or a usage error saying how to configure quotas. */
function quotaControl(ctx: CommandContext<unknown>): { control: QuotaControl; driver: Driver } {
  const { driver } = ctx.locations.writer(undefined);
  const control = quotaOf(driver);
  if (!control) throw new CliError('no quotas are configured: set STOWAGE_QUOTAS (see the README\'s Quotas section)', EXIT.usage);
  return { control, driver };
}

/** Every counter, read-only from the embedded store's folder when another process (the service) holds it. */
async function readCounters(control: QuotaControl, driver: Driver): Promise<{ counters: QuotaCounterReport[]; readOnly: boolean }> {
  try {
    return { counters: await control.counters(), readOnly: false };
  } catch (err) {
    const store = await control.storeOf();
    if (!(store instanceof EmbeddedQuotaStore) || !isStorageError(err, 'E_CONFIG_INVALID')) throw err;
    const reader = new QuotaControl(driver, { rules: control.rules, store: new EmbeddedQuotaStore(store.dir, { readOnly: true }) });
    return { counters: await reader.counters(), readOnly: true };
  }
}

function limitText(used: number, max: number | undefined, format: (n: number) => string): string {
  return max === undefined ? format(used) : `${format(used)} / ${format(max)} (${Math.round((used / max) * 100)} %)`;
}

/** Registers `quota` and its subcommands. */
export function registerQuota(program: Command, run: Runner): void {
  const quota = program.command('quota').description('the quotas of the configured storage (STOWAGE_QUOTAS): usage, limits, and repairing the counters');

  quota
    .command('status')
    .description('every quota folder with what it uses, reserves and may hold (works while the service runs)')
    .action(
      run(async (ctx) => {
        const { control, driver } = quotaControl(ctx);
        const { counters, readOnly } = await readCounters(control, driver);
        const rows = counters
          .sort((a, b) => (a.pattern + a.prefix < b.pattern + b.prefix ? -1 : 1))
          .map((c) => [c.pattern === '' ? '""' : c.pattern, c.prefix === '' ? '(everything)' : c.prefix, limitText(c.usedBytes, c.maxBytes, formatBytes), limitText(c.usedObjects, c.maxObjects, String), formatBytes(c.reservedBytes), c.level]);
        const kind = await control.storeKind();
        output(ctx.opts, { store: kind, readOnly, counters }, () =>
          [
            `${plural(counters.length, 'quota folder')} in the ${kind} store${readOnly ? ' (read from disk: a running service holds it)' : ''}; quotas: ${control.matcher.patterns.map((p) => JSON.stringify(p)).join(', ')}`,
            ...(rows.length > 0 ? [columns([['QUOTA', 'FOLDER', 'BYTES', 'OBJECTS', 'RESERVED', 'LEVEL'], ...rows])] : []),
          ].join('\n'),
        );
        return counters.some((c) => c.level === 'full') ? EXIT.failed : EXIT.ok;
      }),
    );

  quota
    .command('reconcile')
    .option('-y, --yes', 'repair the counters (without it, a dry run that only reports the drift)')
    .description('recompute usage from a listing and report the drift per quota folder; --yes repairs it')
    .action(
      run<ReconcileFlags>(async (ctx) => {
        const report = await quotaControl(ctx).control.reconcile({ dryRun: ctx.opts.yes !== true });
        const rows = report.drift.map((d) => [d.pattern === '' ? '""' : d.pattern, d.prefix === '' ? '(everything)' : d.prefix, `${formatBytes(d.counted.bytes)} -> ${formatBytes(d.listed.bytes)}`, `${d.counted.objects} -> ${d.listed.objects}`]);
        output(ctx.opts, report, () =>
          [
            `listed ${plural(report.objects, 'object')} in ${report.seconds.toFixed(1)} s; ${plural(report.drift.length, 'quota folder')} drifted of ${report.counters}${report.repaired ? ': repaired' : report.drift.length > 0 ? ' (dry run: add --yes to repair)' : ''}`,
            ...(rows.length > 0 ? [columns([['QUOTA', 'FOLDER', 'BYTES (COUNTED -> LISTED)', 'OBJECTS'], ...rows])] : []),
          ].join('\n'),
        );
      }),
    );
}
