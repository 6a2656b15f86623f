/**
 * `stowage outbox status|drain|retry|dead`: the outbox of the configured storage
 * (STOWAGE_OUTBOX_DIR, or `--dir`). `status` and `dead` read the folder as it is on disk,
 * so they work while the service delivers it; `drain` and `retry` deliver, which one
 * process at a time does: they take the folder, and refuse while a service owns it.
 */
import type { Command } from 'commander';
import { inspectOutbox, noOutbox, outboxOf, type DrainReport, type OutboxControl } from '../layers/outbox/control.js';
import type { CommandContext, Runner } from './runner.js';
import { columns, EXIT, formatBytes, output, plural } from './shared.js';

interface OutboxCommandOptions {
  dir?: string;
}

/** The outbox folder the command works on. */
function outboxDir(opts: OutboxCommandOptions): string {
  const dir = opts.dir ?? process.env.STOWAGE_OUTBOX_DIR;
  if (!dir) throw noOutbox();
  return dir;
}

/** The outbox's control, over the configured storage (the folder taken by this process). */
function control(ctx: CommandContext<OutboxCommandOptions>): OutboxControl {
  const storage = ctx.locations.writer(undefined, outboxDir(ctx.opts));
  const found = outboxOf(storage.driver);
  if (!found) throw noOutbox();
  return found;
}

function age(seconds: number): string {
  return seconds < 120 ? `${Math.round(seconds)} s` : seconds < 7200 ? `${Math.round(seconds / 60)} min` : `${(seconds / 3600).toFixed(1)} h`;
}

/** The exit code of a drain: 0 when everything was delivered, 4 when the backend still fails, 1 when entries went dead. */
function drainExit(report: DrainReport): number {
  if (report.dead.length > 0) return EXIT.failed;
  return report.pending > 0 ? EXIT.unavailable : EXIT.ok;
}

function drainText(report: DrainReport): string {
  const lines = [`delivered ${report.delivered}, ${report.pending} still pending, ${report.dead.length} now dead`];
  for (const f of report.failed) lines.push(`  not yet: ${f.key} (${f.id}): ${f.code}: ${f.message}`);
  for (const d of report.dead) lines.push(`  dead:    ${d.key} (${d.id}): ${d.code}: ${d.message}`);
  return lines.join('\n');
}

/** Registers `outbox` and its subcommands. */
export function registerOutbox(program: Command, run: Runner): void {
  const outbox = program
    .command('outbox')
    .description('the outbox of the configured storage (STOWAGE_OUTBOX_DIR): writes queued while the backend was down')
    .option('--dir <folder>', 'the outbox folder (default: STOWAGE_OUTBOX_DIR)');

  outbox
    .command('status')
    .description('pending writes, their bytes and age, and dead letters (read from disk; works while the service runs)')
    .action(
      run<OutboxCommandOptions>(async ({ opts }) => {
        const { status, pending } = await inspectOutbox(outboxDir(opts));
        const rows = pending.map((e) => [e.id, formatBytes(e.size), e.queuedAt, e.reason, e.key]);
        output(opts, { ...status, entries: pending }, () =>
          [
            `outbox ${status.dir}: ${plural(status.pending, 'pending write')} (${formatBytes(status.pendingBytes)}${status.pending > 0 ? `, oldest ${age(status.oldestAgeSeconds)}` : ''}), ${plural(status.dead, 'dead letter')} (${formatBytes(status.deadBytes)})`,
            ...(rows.length > 0 ? [columns([['ID', 'SIZE', 'QUEUED', 'REASON', 'KEY'], ...rows], [1])] : []),
          ].join('\n'),
        );
      }),
    );

  outbox
    .command('drain')
    .description('deliver every pending write now; exit 0 when all were delivered, 4 when the backend still fails, 1 when some went dead')
    .action(
      run<OutboxCommandOptions>(async (ctx) => {
        const report = await control(ctx).drain();
        output(ctx.opts, report, () => drainText(report));
        return drainExit(report);
      }),
    );

  outbox
    .command('retry')
    .argument('[ids...]', 'the dead letters to queue again (default: all)')
    .description('queue dead letters again (after fixing what failed them) and deliver them now')
    .action(
      run<OutboxCommandOptions>(async (ctx, ...ids) => {
        const outboxControl = control(ctx);
        const chosen = ids.join(' ').split(' ').filter((id) => id !== '');
        const retried = await outboxControl.retryDead(chosen.length > 0 ? chosen : undefined);
        const report = await outboxControl.drain();
        output(ctx.opts, { ...retried, drain: report }, () =>
          [`queued again: ${plural(retried.retried.length, 'dead letter')}`, ...retried.skipped.map((id) => `  kept dead: ${id} (a newer write of its key is pending)`), drainText(report)].join('\n'),
        );
        return drainExit(report);
      }),
    );

  outbox
    .command('dead')
    .description('list the dead letters: writes the backend refused for good (kept in <dir>/dead, never deleted)')
    .action(
      run<OutboxCommandOptions>(async ({ opts }) => {
        const { dead } = await inspectOutbox(outboxDir(opts));
        const rows = dead.map((l) => [l.entry.id, formatBytes(l.entry.size), l.deadAt, l.code, l.entry.key]);
        output(opts, dead, () => (rows.length === 0 ? 'no dead letters' : [columns([['ID', 'SIZE', 'DEAD SINCE', 'CODE', 'KEY'], ...rows], [1]), ...dead.map((l) => `${l.entry.id}: ${l.message}`)].join('\n')));
      }),
    );
}
