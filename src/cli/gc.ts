/**
 * `stowage gc`: lifecycle clean-up, a dry run unless `--yes`.
 * - `gc uploads`: aborts multipart uploads older than an age (S3 bills their parts).
 * - `gc temp <prefix>`: deletes objects under a temporary prefix older than an age.
 * - `gc orphans <prefix> --keep <file|->`: deletes objects under a prefix that are not in
 *   the list of keys the app still uses (one a line, from a file or stdin).
 * - `gc sessions`: aborts upload sessions that expired (their bytes are freed).
 */
import { readFile } from 'node:fs/promises';
import { text } from 'node:stream/consumers';
import type { Command } from 'commander';
import type { Storage } from '../core/storage.js';
import type { ObjectInfo } from '../core/types.js';
import type { Runner } from './runner.js';
import { CliError, EXIT, formatBytes, output, parseDuration, parseRef } from './shared.js';

interface GcFlags {
  olderThan?: string;
  keep?: string;
  yes?: boolean;
}

/** The report: `done` (past tense) when acted, else `would <verb>` as a dry run. */
function reportLines([done, verb]: [string, string], acted: boolean, items: string[], bytes?: number): string {
  const said = acted ? done : `would ${verb}`;
  return [`${said} ${items.length}${bytes === undefined ? '' : ` (${formatBytes(bytes)})`}${acted ? '' : ' (dry run: add --yes to act)'}`, ...items.map((i) => `  ${i}`)].join('\n');
}

async function readKeep(source: string): Promise<Set<string>> {
  const raw = source === '-' ? await text(process.stdin) : await readFile(source, 'utf8');
  const { normalizeKey } = await import('../core/keys.js');
  const keys = new Set<string>();
  raw.split(/\r?\n/).forEach((line, i) => {
    if (line.trim() === '') return;
    try {
      keys.add(normalizeKey(line));
    } catch (err) {
      throw new CliError(`${source === '-' ? 'stdin' : source} line ${i + 1}: ${(err as Error).message}`, EXIT.usage);
    }
  });
  return keys;
}

/**
 * Finds the objects under `prefix` that `doomed` picks, deletes them when `act`, and
 * returns them with their total size, for the report.
 */
async function sweep(storage: Storage, prefix: string, doomed: (info: ObjectInfo) => boolean, act: boolean): Promise<{ objects: { key: string; size: number }[]; bytes: number }> {
  const objects: { key: string; size: number }[] = [];
  for await (const info of storage.listAll({ prefix })) if (doomed(info)) objects.push({ key: info.key, size: info.size });
  if (act) await storage.deleteMany(objects.map((o) => o.key));
  return { objects, bytes: objects.reduce((sum, o) => sum + o.size, 0) };
}

/** Registers `gc` and its subcommands. */
export function registerGc(program: Command, run: Runner): void {
  const gc = program.command('gc').description('clean up: abandoned uploads, old temporary objects, orphans (dry run unless --yes)');

  gc.command('uploads')
    .argument('[prefix]', 'a prefix in the default location, or <location>#<prefix>')
    .option('--older-than <age>', 'only uploads started longer ago than this (90s, 30m, 24h, 7d)', '24h')
    .option('-y, --yes', 'abort them (default: only report)')
    .description('abort incomplete multipart uploads older than an age')
    .action(
      run<GcFlags>(async ({ opts, locations }, target = '') => {
        const ref = parseRef(target);
        const storage = locations.storage(ref.location);
        const cutoff = Date.now() - parseDuration(opts.olderThan ?? '24h', '--older-than');
        const stale = (await storage.incompleteUploads({ prefix: ref.path })).filter((u) => u.initiated.getTime() < cutoff);
        if (opts.yes) for (const upload of stale) await storage.abortUpload(upload);
        output(opts, { acted: opts.yes === true, uploads: stale.map((u) => ({ ...u, initiated: u.initiated.toISOString() })) }, () =>
          reportLines(['aborted', 'abort'], opts.yes === true, stale.map((u) => `${u.key} (upload ${u.uploadId}, started ${u.initiated.toISOString()})`)),
        );
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
        const storage = locations.storage(ref.location);
        const cutoff = Date.now() - parseDuration(opts.olderThan ?? '', '--older-than');
        const { objects, bytes } = await sweep(storage, ref.path, (info) => info.lastModified.getTime() < cutoff, opts.yes === true);
        output(opts, { acted: opts.yes === true, objects, bytes }, () => reportLines(['deleted', 'delete'], opts.yes === true, objects.map((o) => o.key), bytes));
      }),
    );

  gc.command('orphans')
    .argument('<prefix>', 'the prefix the app owns, in the default location or as <location>#<prefix>')
    .requiredOption('--keep <file>', 'the keys still in use, one a line (- for stdin)')
    .option('-y, --yes', 'delete the orphans (default: only report)')
    .description('delete objects under a prefix that are not in the list of keys in use')
    .action(
      run<GcFlags>(async ({ opts, locations }, target = '') => {
        const ref = parseRef(target);
        const storage = locations.storage(ref.location);
        const keep = await readKeep(opts.keep ?? '-');
        const { objects, bytes } = await sweep(storage, ref.path, (info) => !keep.has(info.key), opts.yes === true);
        output(opts, { acted: opts.yes === true, kept: keep.size, objects, bytes }, () => reportLines(['deleted', 'delete'], opts.yes === true, objects.map((o) => o.key), bytes));
      }),
    );

  gc.command('sessions')
    .argument('[location]', 'a location (default: the configured storage)')
    .option('-y, --yes', 'abort them (default: only report)')
    .description('abort upload sessions that expired, freeing their bytes')
    .action(
      run<GcFlags>(async ({ opts, locations }, location?: string) => {
        const storage = locations.storage(location);
        const { sessions } = await storage.sessions.cleanup({ dryRun: opts.yes !== true });
        output(opts, { acted: opts.yes === true, sessions: sessions.map((x) => ({ id: x.id, key: x.key, offset: x.offset, expiresAt: x.expiresAt.toISOString() })) }, () =>
          reportLines(['aborted', 'abort'], opts.yes === true, sessions.map((x) => `${x.key} (session ${x.id}, ${formatBytes(x.offset)}, expired ${x.expiresAt.toISOString()})`)),
        );
      }),
    );
}
