/**
 * Lifecycle rules: what to remove, by prefix. A rule has a `prefix` and one action:
 *
 * - `{ "prefix": "temp/", "expireAfter": "24h" }` deletes objects last written longer ago
 *   than the age. The prefix may not be empty: an expiry never sweeps a whole storage.
 * - `{ "prefix": "", "abortIncompleteAfter": "7d" }` aborts S3 multipart uploads started,
 *   and upload sessions created, longer ago than the age, and sessions that expired.
 *   `"only": "uploads"` or `"only": "sessions"` restricts it to one of the two.
 * - `{ "prefix": "uploads/", "orphans": { "keep": "/path/keys.txt", "minAge": "1h" } }`
 *   deletes objects that are not in the keep list (a file of keys, one a line, read at each
 *   run; in code also any iterable of keys) and were last written longer ago than
 *   `minAge` (default 1 h), which protects objects uploaded since the list was made.
 *
 * Rules come as JSON (STOWAGE_LIFECYCLE, `stowage gc run --rules`) or as an array in code;
 * both are checked here, and a bad rule is E_CONFIG_INVALID naming where the rules came
 * from, the rule's index and its field.
 */
import type * as Zod from 'zod';
import { DURATION_HELP, durationMs } from '../core/durations.js';
import { errorMessage, StorageError } from '../core/errors.js';
import { normalizeKey, normalizePrefix } from '../core/keys.js';
import { lazyModule, lazyValue } from '../core/lazy.js';

/** Deletes objects under `prefix` last written longer ago than `expireAfter`. */
export interface ExpireRule {
  prefix: string;
  /** A duration: `90s`, `30m`, `24h`, `7d`. */
  expireAfter: string;
}

/** Aborts incomplete uploads under `prefix`: multipart uploads and upload sessions older than the age, and expired sessions. */
export interface AbortIncompleteRule {
  prefix: string;
  /** A duration: `90s`, `30m`, `24h`, `7d`. */
  abortIncompleteAfter: string;
  /** Only S3 multipart uploads, or only upload sessions (default both). */
  only?: 'uploads' | 'sessions';
}

/** Deletes objects under `prefix` that the app no longer references. */
export interface OrphansRule {
  prefix: string;
  orphans: {
    /** The keys in use: a file of keys, one a line (read at each run), or in code any iterable of keys. */
    keep: string | Iterable<string>;
    /** Objects written more recently than this are kept (default `1h`). */
    minAge?: string;
  };
}

/** One lifecycle rule: a prefix and one action. */
export type LifecycleRule = ExpireRule | AbortIncompleteRule | OrphansRule;

/** A checked rule, ready to run: ages in milliseconds, the prefix normalized. */
export type CheckedRule =
  | { index: number; kind: 'expire'; prefix: string; ageMs: number }
  | { index: number; kind: 'abortIncomplete'; prefix: string; ageMs: number; uploads: boolean; sessions: boolean }
  | { index: number; kind: 'orphans'; prefix: string; keep: string | ReadonlySet<string>; minAgeMs: number };

/** The minimum age of an orphan when a rule does not say. */
const DEFAULT_ORPHAN_MIN_AGE_MS = 3_600_000;

/** zod, required when rules are first checked: a program without lifecycle rules never loads it. */
const zod = lazyModule<typeof Zod>('zod', 'checking lifecycle rules');

function buildSchema() {
  const { z } = zod();
  const duration = z.string({ error: `must be ${DURATION_HELP}` }).refine((text) => durationMs(text) !== undefined, { error: `must be ${DURATION_HELP}` });
  const prefix = z.string({ error: 'must be a string ("" for everything)' }).transform((text, ctx) => {
    try {
      return normalizePrefix(text);
    } catch (err) {
      ctx.addIssue({ code: 'custom', message: errorMessage(err) });
      return z.NEVER;
    }
  });
  const iterable = z.custom<Iterable<string>>((v) => typeof v === 'object' && v !== null && Symbol.iterator in v, { error: 'must be a file path or, in code, an iterable of keys' });
  const rule = z
    .strictObject({
      prefix,
      expireAfter: duration.optional(),
      abortIncompleteAfter: duration.optional(),
      only: z.enum(['uploads', 'sessions'], { error: 'must be "uploads" or "sessions"' }).optional(),
      orphans: z
        .strictObject({ keep: z.union([z.string().min(1, { error: 'must name a file' }), iterable], { error: 'must be a file path or, in code, an iterable of keys' }), minAge: duration.optional() }, { error: 'must be an object { keep, minAge? }' })
        .optional(),
    }, { error: 'must be an object with a prefix and one action' })
    .superRefine((r, ctx) => {
      const actions = (['expireAfter', 'abortIncompleteAfter', 'orphans'] as const).filter((a) => r[a] !== undefined);
      if (actions.length !== 1) ctx.addIssue({ code: 'custom', message: `must have exactly one of expireAfter, abortIncompleteAfter or orphans${actions.length > 1 ? ` (has ${actions.join(' and ')})` : ''}`, path: [] });
      if (r.only !== undefined && r.abortIncompleteAfter === undefined) ctx.addIssue({ code: 'custom', message: 'applies only to an abortIncompleteAfter rule', path: ['only'] });
      if (r.expireAfter !== undefined && r.prefix === '') ctx.addIssue({ code: 'custom', message: 'must not be empty for an expiry: an expiry never sweeps a whole storage', path: ['prefix'] });
    });
  return z.array(rule, { error: 'must be an array of rules' });
}

const schema = lazyValue(buildSchema);

/** E_CONFIG_INVALID for rules from `source`, with the rule and field when known. */
function rulesError(source: string, problems: { rule?: number; field?: string; message: string }[]): StorageError {
  const text = problems.map((p) => `${p.rule === undefined ? '' : `rule ${p.rule}`}${p.field ? ` field ${p.field}` : ''}${p.rule === undefined && !p.field ? '' : ' '}${p.message}`).join('; ');
  const first = problems[0];
  return new StorageError('E_CONFIG_INVALID', `invalid lifecycle rules in ${source}: ${text}`, {
    details: { variables: [source], ...(first?.rule === undefined ? {} : { rule: first.rule }), ...(first?.field ? { field: first.field } : {}) },
  });
}

/**
 * Checks rules (an array, as from JSON or code) and returns them ready to run. `source`
 * names where they came from in errors: `STOWAGE_LIFECYCLE`, `--rules`, `lifecycle`.
 */
export function checkLifecycleRules(rules: unknown, source = 'lifecycle'): CheckedRule[] {
  const result = schema().safeParse(rules);
  if (!result.success) {
    throw rulesError(
      source,
      result.error.issues.map((issue) => {
        const [index, ...field] = issue.path;
        const unknown = issue.code === 'unrecognized_keys' ? ` ${issue.keys.map((k) => JSON.stringify(k)).join(', ')}` : '';
        return { rule: typeof index === 'number' ? index : undefined, field: field.map(String).join('.'), message: `${issue.message}${unknown}` };
      }),
    );
  }
  return result.data.map((r, index): CheckedRule => {
    if (r.expireAfter !== undefined) return { index, kind: 'expire', prefix: r.prefix, ageMs: durationMs(r.expireAfter) as number };
    if (r.abortIncompleteAfter !== undefined) {
      return { index, kind: 'abortIncomplete', prefix: r.prefix, ageMs: durationMs(r.abortIncompleteAfter) as number, uploads: r.only !== 'sessions', sessions: r.only !== 'uploads' };
    }
    const orphans = r.orphans as { keep: string | Iterable<string>; minAge?: string };
    const minAgeMs = orphans.minAge === undefined ? DEFAULT_ORPHAN_MIN_AGE_MS : (durationMs(orphans.minAge) as number);
    return { index, kind: 'orphans', prefix: r.prefix, keep: typeof orphans.keep === 'string' ? orphans.keep : keepSet(orphans.keep, `${source} rule ${index} keep`), minAgeMs };
  });
}

/** Parses rules given as JSON text (STOWAGE_LIFECYCLE, `--rules`); errors name `source`. */
export function parseLifecycleRules(text: string, source: string): CheckedRule[] {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (err) {
    throw rulesError(source, [{ message: `is not valid JSON (${errorMessage(err)})` }]);
  }
  return checkLifecycleRules(parsed, source);
}

/** The keys of an iterable, normalized; a bad key is E_INVALID_ARGUMENT naming `source` and its position. */
function keepSet(keys: Iterable<string>, source: string): Set<string> {
  const set = new Set<string>();
  let i = 0;
  for (const key of keys) {
    i++;
    try {
      set.add(normalizeKey(key));
    } catch (err) {
      throw new StorageError('E_INVALID_ARGUMENT', `${source} item ${i}: ${errorMessage(err)}`, { cause: err });
    }
  }
  return set;
}

/**
 * The keys of a keep list's text, one a line (blank lines skipped), normalized; a bad
 * key is E_INVALID_ARGUMENT naming `source` and the line.
 */
export function parseKeepList(text: string, source: string): Set<string> {
  const keys = new Set<string>();
  text.split(/\r?\n/).forEach((line, i) => {
    if (line.trim() === '') return;
    try {
      keys.add(normalizeKey(line));
    } catch (err) {
      throw new StorageError('E_INVALID_ARGUMENT', `${source} line ${i + 1}: ${errorMessage(err)}`, { cause: err });
    }
  });
  return keys;
}
