/**
 * One lifecycle run: each rule in turn, through the Storage API (so a layer around the
 * driver, such as a quota, sees and counts every delete and abort). Objects are listed
 * page by page and deleted a batch at a time as the listing goes, so memory stays bounded
 * whatever the number of objects: the report keeps counts and bytes of everything but
 * only the first keys. A rule that fails is reported with its error and the next one
 * still runs; a fired `signal` ends the run after the batch in progress.
 */
import { readFile } from 'node:fs/promises';
import { abortedError, errorMessage, StorageError, withContext } from '../core/errors.js';
import type { Storage } from '../core/storage.js';
import type { ObjectInfo, WriteResult } from '../core/types.js';
import { checkLifecycleRules, parseKeepList, type CheckedRule, type LifecycleRule } from './rules.js';

/** What a run removes: expired objects, orphans, multipart uploads, upload sessions. */
export type LifecycleAction = 'expire' | 'orphan' | 'abort_upload' | 'abort_session';

/** One thing a run removed (or, in a dry run, would remove). */
export interface LifecycleItem {
  action: LifecycleAction;
  key: string;
  /** Bytes freed: the object's size, or what the session held. Unknown (undefined) for multipart uploads, which S3 lists without sizes. */
  size?: number;
  /** When the object was last written, the upload started or the session was created. */
  since: Date;
  /** The multipart upload's id. */
  uploadId?: string;
  /** The upload session's id. */
  sessionId?: string;
  /** When the upload session expires (or expired). */
  expiresAt?: Date;
}

/** Counts of one action of a rule. */
export interface LifecycleTotal {
  objects: number;
  bytes: number;
}

/** What one rule did. */
export interface RuleReport {
  /** The rule's position in the rules given. */
  index: number;
  prefix: string;
  kind: CheckedRule['kind'];
  /** What was removed (or would be, in a dry run), by action: every item counted, listed or not. */
  totals: Partial<Record<LifecycleAction, LifecycleTotal>>;
  /** The first items removed, up to the run's `maxItems`. */
  items: LifecycleItem[];
  /** Items removed but left out of `items`. */
  omitted: number;
  /** For an orphans rule: how many keys its keep list holds. */
  kept?: number;
  /** Why the rule stopped early, when it did (what it removed before is in the totals). */
  error?: StorageError;
}

/** What a run did. */
export interface LifecycleReport {
  /** True when nothing was removed, only reported. */
  dryRun: boolean;
  startedAt: Date;
  durationMs: number;
  /** One report per rule run, in order; a run that was cancelled has no report for the rules after it. */
  rules: RuleReport[];
}

/** Options of {@link runLifecycle}. */
export interface RunLifecycleOptions {
  /** Only report what would be removed. */
  dryRun: boolean;
  /** The time ages are measured from (default the time the run starts). */
  now?: Date;
  /** Cancels the run: it stops after the batch in progress, and the rule it was in reports E_ABORTED. */
  signal?: AbortSignal;
  /** Items listed per rule in the report (default 100); the totals count them all. */
  maxItems?: number;
}

/** Keys deleted per call: a bound on memory, and S3's DeleteObjects limit. */
const DELETE_BATCH = 1000;
const DEFAULT_MAX_ITEMS = 100;

/**
 * Runs lifecycle rules (as {@link LifecycleRule}s, checked here: a bad one is
 * E_CONFIG_INVALID) once on `storage`, and reports what each removed.
 */
export async function runLifecycle(storage: Storage<WriteResult>, rules: readonly LifecycleRule[], opts: RunLifecycleOptions): Promise<LifecycleReport> {
  return runCheckedRules(storage, checkLifecycleRules(rules), opts);
}

/** {@link runLifecycle} for rules already checked. */
export async function runCheckedRules(storage: Storage<WriteResult>, rules: readonly CheckedRule[], opts: RunLifecycleOptions): Promise<LifecycleReport> {
  const started = performance.now();
  const startedAt = new Date();
  const ctx: RunContext = { storage, dryRun: opts.dryRun, now: (opts.now ?? startedAt).getTime(), signal: opts.signal, maxItems: opts.maxItems ?? DEFAULT_MAX_ITEMS };
  const reports: RuleReport[] = [];
  for (const rule of rules) {
    if (opts.signal?.aborted) break;
    const report: RuleReport = { index: rule.index, prefix: rule.prefix, kind: rule.kind, totals: {}, items: [], omitted: 0 };
    reports.push(report);
    try {
      if (rule.kind === 'expire') await sweep(ctx, report, rule.prefix, 'expire', (info) => info.lastModified.getTime() < ctx.now - rule.ageMs);
      else if (rule.kind === 'orphans') await sweepOrphans(ctx, report, rule);
      else await abortIncomplete(ctx, report, rule);
    } catch (err) {
      report.error = withContext(opts.signal?.aborted ? abortedError(opts.signal, err) : err, { operation: 'lifecycle', backend: storage.backend });
    }
  }
  return { dryRun: opts.dryRun, startedAt, durationMs: Math.round(performance.now() - started), rules: reports };
}

interface RunContext {
  storage: Storage<WriteResult>;
  dryRun: boolean;
  now: number;
  signal: AbortSignal | undefined;
  maxItems: number;
}

function record(ctx: RunContext, report: RuleReport, item: LifecycleItem): void {
  const total = (report.totals[item.action] ??= { objects: 0, bytes: 0 });
  total.objects++;
  total.bytes += item.size ?? 0;
  if (report.items.length < ctx.maxItems) report.items.push(item);
  else report.omitted++;
}

function checkSignal(ctx: RunContext): void {
  if (ctx.signal?.aborted) throw abortedError(ctx.signal);
}

/** Deletes the objects under `prefix` that `doomed` picks, a batch at a time as the listing pages. */
async function sweep(ctx: RunContext, report: RuleReport, prefix: string, action: LifecycleAction, doomed: (info: ObjectInfo) => boolean): Promise<void> {
  let batch: ObjectInfo[] = [];
  const flush = async () => {
    checkSignal(ctx);
    if (!ctx.dryRun) await ctx.storage.deleteMany(batch.map((o) => o.key));
    for (const o of batch) record(ctx, report, { action, key: o.key, size: o.size, since: o.lastModified });
    batch = [];
  };
  for await (const info of ctx.storage.listAll({ prefix, details: false, signal: ctx.signal })) {
    if (!doomed(info)) continue;
    batch.push(info);
    if (batch.length === DELETE_BATCH) await flush();
  }
  if (batch.length > 0) await flush();
}

async function sweepOrphans(ctx: RunContext, report: RuleReport, rule: Extract<CheckedRule, { kind: 'orphans' }>): Promise<void> {
  const keep = typeof rule.keep === 'string' ? await readKeepFile(rule.keep, rule.index) : rule.keep;
  // An empty list (a truncated export, a wrong path) would make every object an orphan.
  if (keep.size === 0) throw new StorageError('E_CONFIG_INVALID', `lifecycle rule ${rule.index}: the keep list${typeof rule.keep === 'string' ? ` ${rule.keep}` : ''} is empty; refusing to treat every object under "${rule.prefix}" as an orphan`);
  report.kept = keep.size;
  const cutoff = ctx.now - rule.minAgeMs;
  await sweep(ctx, report, rule.prefix, 'orphan', (info) => !keep.has(info.key) && info.lastModified.getTime() < cutoff);
}

async function readKeepFile(path: string, index: number): Promise<Set<string>> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    throw new StorageError('E_CONFIG_INVALID', `lifecycle rule ${index}: cannot read the keep list ${path}: ${errorMessage(err)}`, { cause: err });
  }
  return parseKeepList(text, path);
}

/** Aborts the multipart uploads and upload sessions the rule picks, oldest first. */
async function abortIncomplete(ctx: RunContext, report: RuleReport, rule: Extract<CheckedRule, { kind: 'abortIncomplete' }>): Promise<void> {
  const { storage } = ctx;
  const cutoff = ctx.now - rule.ageMs;
  if (rule.uploads) {
    for (const upload of await storage.incompleteUploads({ prefix: rule.prefix })) {
      if (upload.initiated.getTime() >= cutoff) continue;
      checkSignal(ctx);
      if (!ctx.dryRun) await storage.abortUpload(upload);
      record(ctx, report, { action: 'abort_upload', key: upload.key, since: upload.initiated, uploadId: upload.uploadId });
    }
  }
  if (rule.sessions) {
    // `list` leaves out expired sessions and `cleanup` gives only those: together, every one.
    const expired = (await storage.sessions.cleanup({ before: new Date(ctx.now), dryRun: true, prefix: rule.prefix })).sessions;
    const seen = new Set(expired.map((s) => s.id));
    const old = (await storage.sessions.list({ prefix: rule.prefix })).filter((s) => !seen.has(s.id) && s.createdAt.getTime() < cutoff);
    for (const session of [...expired, ...old].sort((a, b) => a.createdAt.getTime() - b.createdAt.getTime())) {
      checkSignal(ctx);
      if (!ctx.dryRun) await storage.sessions.abort(session.id);
      record(ctx, report, { action: 'abort_session', key: session.key, size: session.offset, since: session.createdAt, sessionId: session.id, expiresAt: session.expiresAt });
    }
  }
}
