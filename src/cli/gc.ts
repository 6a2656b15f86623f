/**
 * `stowage gc`: lifecycle clean-up through the lifecycle rules (src/lifecycle/), a dry
 * run unless `--yes`.
 * - `gc run`: runs lifecycle rules (`--rules`, default STOWAGE_LIFECYCLE), as the service does.
 * - `gc uploads`: aborts multipart uploads older than an age (S3 bills their parts).
 * - `gc temp <prefix>`: deletes objects under a temporary prefix older than an age.
 * - `gc orphans <prefix> --keep <file|->`: deletes objects under a prefix that are not in
 *   the list of keys the app still uses (one a line, from a file or stdin).
 * - `gc sessions`: aborts upload sessions that expired (their bytes are freed).
 * Each of the last four is a run of one rule.
 */
import { readFile } from 'node:fs/promises';
import { text } from 'node:stream/consumers';
import type { Command } from 'commander';
import { parseDuration } from '../core/durations.js';
import type { CheckedRule, LifecycleRule } from '../lifecycle/rules.js';
import type { LifecycleAction, LifecycleItem, LifecycleReport, RuleReport } from '../lifecycle/run.js';
import type { Runner } from './runner.js';
import { CliError, EXIT, formatBytes, output, parseRef, type GlobalOptions, type Locations } from './shared.js';

interface GcFlags {
  olderThan?: string;
  keep?: string;
  minAge?: string;
  rules?: string;
  yes?: boolean;
}

/** Past tense and verb of each action, for the report. */
const WORDS: Record<LifecycleAction, [string, string]> = { expire: ['deleted', 'delete'], orphan: ['deleted', 'delete'], abort_upload: ['aborted', 'abort'], abort_session: ['aborted', 'abort'] };

/** The report: `done` (past tense) when acted, else `would <verb>` as a dry run. */
function reportLines([done, verb]: [string, string], acted: boolean, count: number, items: string[], bytes?: number): string {
  const said = acted ? done : `would ${verb}`;
  return [`${said} ${count}${bytes === undefined ? '' : ` (${formatBytes(bytes)})`}${acted ? '' : ' (dry run: add --yes to act)'}`, ...items.map((i) => `  ${i}`)].join('\n');
}

/** One item as a line of the report. */
function describe(item: LifecycleItem, now: Date): string {
  switch (item.action) {
    case 'abort_upload':
      return `${item.key} (upload ${item.uploadId ?? ''}, started ${item.since.toISOString()})`;
    case 'abort_session': {
      const expires = item.expiresAt ?? item.since;
      return `${item.key} (session ${item.sessionId ?? ''}, ${formatBytes(item.size ?? 0)}, ${expires <= now ? `expired ${expires.toISOString()}` : `created ${item.since.toISOString()}`})`;
    }
    default:
      return item.key;
  }
}

/**
 * Runs checked rules on a location. A run that removes holds the location's lifecycle
 * lock, the one the service's scheduled runs take (see `lifecycleLock`), so the two never
 * work at once; one that finds it held removes nothing and fails with EXIT.unavailable.
 * A dry run removes nothing and takes no lock.
 */
async function runAt(locations: Locations, location: string | undefined, rules: readonly CheckedRule[], opts: { dryRun: boolean; maxItems?: number }): Promise<LifecycleReport> {
  const [{ runLocked }, { lifecycleLock }] = await Promise.all([import('../lifecycle/schedule.js'), import('../lifecycle/env.js')]);
  const storage = locations.storage(location);
  const lock = opts.dryRun ? undefined : await locations.config(location).then(({ config, env }) => lifecycleLock(env, config));
  try {
    const report = await runLocked(storage, rules, { ...opts, lock });
    if (report !== undefined) return report;
  } finally {
    await lock?.close?.();
  }
  throw new CliError(`another runner holds the lifecycle lock of ${locations.label(location)} (the service's scheduled run, or another gc); nothing was removed: try again once it is done`, EXIT.unavailable);
}

/** Runs one rule on a location (a dry run unless `yes`), with every item in the report; a failed rule fails the command. */
async function runRule(locations: Locations, location: string | undefined, rule: LifecycleRule, yes: boolean | undefined): Promise<RuleReport> {
  const { checkLifecycleRules } = await import('../lifecycle/rules.js');
  // The command prints every item, as it always did.
  const report = await runAt(locations, location, checkLifecycleRules([rule], 'the command line'), { dryRun: yes !== true, maxItems: Number.POSITIVE_INFINITY });
  const result = report.rules[0] as RuleReport;
  if (result.error) throw result.error;
  return result;
}

/** The keys of a `--keep` list from stdin (`-`), or the file's path for the rule to read. */
async function keepList(source: string): Promise<string | Set<string>> {
  if (source !== '-') return source;
  const { parseKeepList } = await import('../lifecycle/rules.js');
  return parseKeepList(await text(process.stdin), 'stdin');
}

/** The rules of `gc run`: `--rules` (JSON, or `@file`), else STOWAGE_LIFECYCLE. */
async function runRules(option: string | undefined): Promise<{ text: string; source: string }> {
  if (option?.startsWith('@')) return { text: await readFile(option.slice(1), 'utf8'), source: option.slice(1) };
  if (option !== undefined) return { text: option, source: '--rules' };
  const env = process.env.STOWAGE_LIFECYCLE;
  if (env === undefined || env.trim() === '') throw new CliError('gc run needs rules: --rules <json|@file>, or STOWAGE_LIFECYCLE', EXIT.usage);
  return { text: env, source: 'STOWAGE_LIFECYCLE' };
}

/** Prints a `gc run` report: per rule, what each action removed and the first items. */
function printRun(opts: GlobalOptions, report: LifecycleReport): void {
  output(opts, report, () =>
    report.rules
      .map((rule) => {
        const lines = [`rule ${rule.index} ${JSON.stringify(rule.prefix)} (${rule.kind})${rule.error ? `: failed: ${rule.error.message}` : ''}`];
        for (const [action, total] of Object.entries(rule.totals) as [LifecycleAction, { objects: number; bytes: number }][]) {
          const items = rule.items.filter((i) => i.action === action).map((i) => describe(i, report.startedAt));
          lines.push(`  ${action}: ${reportLines(WORDS[action], !report.dryRun, total.objects, items, action === 'abort_upload' ? undefined : total.bytes).replaceAll('\n', '\n  ')}`);
        }
        if (Object.keys(rule.totals).length === 0 && !rule.error) lines.push('  nothing to remove');
        if (rule.omitted > 0) lines.push(`  ... and ${rule.omitted} more`);
        return lines.join('\n');
      })
      .join('\n'),
  );
}

/** Registers `gc` and its subcommands. */
export function registerGc(program: Command, run: Runner): void {
  const gc = program.command('gc').description('clean up: abandoned uploads, old temporary objects, orphans (dry run unless --yes)');

  gc.command('run')
    .argument('[location]', 'a location (default: the configured storage)')
    .option('--rules <json|@file>', 'the lifecycle rules, as JSON or @file (default: STOWAGE_LIFECYCLE)')
    .option('-y, --yes', 'remove what the rules pick (default: only report)')
    .description('run lifecycle rules once, as the service does on its schedule')
    .action(
      run<GcFlags>(async ({ opts, locations }, location?: string) => {
        const { text: rulesText, source } = await runRules(opts.rules);
        const { parseLifecycleRules } = await import('../lifecycle/rules.js');
        const rules = parseLifecycleRules(rulesText, source);
        const report = await runAt(locations, location, rules, { dryRun: opts.yes !== true });
        printRun(opts, report);
        const failed = report.rules.filter((r) => r.error);
        for (const rule of failed) process.stderr.write(`stowage: rule ${rule.index} failed: ${rule.error?.message ?? ''}\n`);
        return failed.length > 0 ? EXIT.failed : EXIT.ok;
      }),
    );

  gc.command('uploads')
    .argument('[prefix]', 'a prefix in the default location, or <location>#<prefix>')
    .option('--older-than <age>', 'only uploads started longer ago than this (90s, 30m, 24h, 7d)', '24h')
    .option('-y, --yes', 'abort them (default: only report)')
    .description('abort incomplete multipart uploads older than an age')
    .action(
      run<GcFlags>(async ({ opts, locations }, target = '') => {
        const ref = parseRef(target);
        const age = opts.olderThan ?? '24h';
        parseDuration(age, '--older-than');
        const report = await runRule(locations, ref.location, { prefix: ref.path, abortIncompleteAfter: age, only: 'uploads' }, opts.yes);
        const uploads = report.items.map((u) => ({ key: u.key, uploadId: u.uploadId, initiated: u.since.toISOString() }));
        output(opts, { acted: opts.yes === true, uploads }, () => reportLines(WORDS.abort_upload, opts.yes === true, uploads.length, report.items.map((u) => describe(u, new Date()))));
      }),
    );

  gc.command('temp')
    .argument('<prefix>', 'the temporary prefix, in the default location or as <location>#<prefix>')
    .requiredOption('--older-than <age>', 'only objects last written longer ago than this (90s, 30m, 24h, 7d)')
    .option('-y, --yes', 'delete them (default: only report)')
    .description('delete objects under a temporary prefix older than an age')
    .action(
      run<GcFlags>(async ({ opts, locations }, target = '') => {
        const ref = parseRef(target);
        if (ref.path === '') throw new CliError('gc temp needs a prefix, such as tmp/; it never sweeps a whole storage', EXIT.usage);
        const age = opts.olderThan ?? '';
        parseDuration(age, '--older-than');
        const report = await runRule(locations, ref.location, { prefix: ref.path, expireAfter: age }, opts.yes);
        const objects = report.items.map((o) => ({ key: o.key, size: o.size ?? 0 }));
        const bytes = report.totals.expire?.bytes ?? 0;
        output(opts, { acted: opts.yes === true, objects, bytes }, () => reportLines(WORDS.expire, opts.yes === true, objects.length, objects.map((o) => o.key), bytes));
      }),
    );

  gc.command('orphans')
    .argument('<prefix>', 'the prefix the app owns, in the default location or as <location>#<prefix>')
    .requiredOption('--keep <file>', 'the keys still in use, one a line (- for stdin)')
    .option('--min-age <age>', 'keep objects written more recently than this (90s, 30m, 24h, 7d)', '0s')
    .option('-y, --yes', 'delete the orphans (default: only report)')
    .description('delete objects under a prefix that are not in the list of keys in use')
    .action(
      run<GcFlags>(async ({ opts, locations }, target = '') => {
        const ref = parseRef(target);
        const minAge = opts.minAge ?? '0s';
        parseDuration(minAge, '--min-age');
        const keep = await keepList(opts.keep ?? '-');
        const report = await runRule(locations, ref.location, { prefix: ref.path, orphans: { keep, minAge } }, opts.yes);
        const objects = report.items.map((o) => ({ key: o.key, size: o.size ?? 0 }));
        const bytes = report.totals.orphan?.bytes ?? 0;
        output(opts, { acted: opts.yes === true, kept: report.kept ?? 0, objects, bytes }, () => reportLines(WORDS.orphan, opts.yes === true, objects.length, objects.map((o) => o.key), bytes));
      }),
    );

  gc.command('sessions')
    .argument('[location]', 'a location (default: the configured storage)')
    .option('-y, --yes', 'abort them (default: only report)')
    .description('abort upload sessions that expired, freeing their bytes')
    .action(
      run<GcFlags>(async ({ opts, locations }, location?: string) => {
        const { MAX_SESSION_EXPIRES_IN } = await import('../core/upload-sessions.js');
        // No session lives longer than MAX_SESSION_EXPIRES_IN: older than that, it expired, so the rule aborts the expired ones alone.
        const report = await runRule(locations, location, { prefix: '', abortIncompleteAfter: `${MAX_SESSION_EXPIRES_IN}s`, only: 'sessions' }, opts.yes);
        const sessions = report.items.map((x) => ({ id: x.sessionId, key: x.key, offset: x.size ?? 0, expiresAt: (x.expiresAt ?? x.since).toISOString() }));
        output(opts, { acted: opts.yes === true, sessions }, () => reportLines(WORDS.abort_session, opts.yes === true, sessions.length, report.items.map((x) => describe(x, new Date()))));
      }),
    );
}
