/**
 * Quota rules: which counters a key counts against, and their limits. A rule's pattern is
 * `""` (the whole storage) or a prefix of folders ending in `/`, where a segment `*`
 * matches any one folder name: `users/*\/` gives every folder under `users/` a quota of its
 * own. Matching is by string, O(segments of the pattern) per rule, never a listing.
 */
import { StorageError } from '../../core/errors.js';
import { counterId } from './store.js';

/** The limits of one quota pattern, as configured. */
export interface QuotaLimit {
  /** The most bytes the objects under the prefix may hold. */
  maxBytes?: number;
  /** The most objects under the prefix. */
  maxObjects?: number;
  /** The fraction (0 < warnAt < 1) of a limit past which the quota warns (an event, a log line, health `degraded`). Default 0.9. */
  warnAt?: number;
}

/** Quotas by pattern: `{ "": { maxBytes: 500e9 }, "users/*\/": { maxBytes: 1073741824, maxObjects: 10000, warnAt: 0.8 } }`. */
export type QuotaRules = Record<string, QuotaLimit>;

/** One quota a key falls under: its pattern, the prefix it matched, the counter's id and the limits. */
export interface MatchedQuota {
  pattern: string;
  prefix: string;
  counter: string;
  maxBytes?: number;
  maxObjects?: number;
  warnAt: number;
}

/** The threshold of a quota without `warnAt`. */
export const DEFAULT_WARN_AT = 0.9;

interface CompiledRule {
  pattern: string;
  segments: string[];
  limit: Required<Pick<QuotaLimit, 'warnAt'>> & QuotaLimit;
}

function invalid(message: string, source: string): StorageError {
  return new StorageError('E_CONFIG_INVALID', `invalid quota configuration${source ? ` (${source})` : ''}: ${message}`);
}

function checkCount(value: unknown, what: string, source: string): number | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) throw invalid(`${what} must be a whole number >= 0 (got ${JSON.stringify(value)})`, source);
  return value;
}

/** The quotas of a configuration, checked: E_CONFIG_INVALID names the pattern and field at fault. */
export class QuotaMatcher {
  readonly #rules: CompiledRule[];

  /** `source` names where the rules came from in errors (e.g. `STOWAGE_QUOTAS`). */
  constructor(rules: QuotaRules, source = '') {
    if (rules === null || typeof rules !== 'object' || Array.isArray(rules)) throw invalid('quotas must be an object of patterns, e.g. {"users/*/": {"maxBytes": 1073741824}}', source);
    this.#rules = Object.entries(rules).map(([pattern, limit]) => compile(pattern, limit, source));
    if (this.#rules.length === 0) throw invalid('no quota is given', source);
  }

  /** The patterns, in configuration order. */
  get patterns(): string[] {
    return this.#rules.map((r) => r.pattern);
  }

  /** The limits of `pattern`, or undefined for a pattern not configured. */
  limitOf(pattern: string): (QuotaLimit & { warnAt: number }) | undefined {
    return this.#rules.find((r) => r.pattern === pattern)?.limit;
  }

  /** Every quota `key` counts against (a key matches a pattern when it lies under the prefix the pattern matched). */
  match(key: string): MatchedQuota[] {
    // A key must have a name below the rule's folders: `users/alice` is not in `users/*/`.
    return this.#matching(key.split('/'), 1);
  }

  /**
   * The quotas a folder `prefix` (`""` or ending in `/`) lies in, for usage reports: for
   * `users/alice/`, the `users/alice/` counter of `users/*\/` and the `""` counter.
   */
  covering(prefix: string): MatchedQuota[] {
    return this.#matching(prefix === '' ? [] : prefix.slice(0, -1).split('/'), 0);
  }

  /** The rules whose folders `segments` spell out, with at least `below` segments more. */
  #matching(segments: string[], below: number): MatchedQuota[] {
    const matched: MatchedQuota[] = [];
    for (const rule of this.#rules) {
      if (segments.length < rule.segments.length + below) continue;
      if (!rule.segments.every((s, i) => s === '*' || s === segments[i])) continue;
      const prefix = rule.segments.length === 0 ? '' : `${segments.slice(0, rule.segments.length).join('/')}/`;
      matched.push({ pattern: rule.pattern, prefix, counter: counterId(rule.pattern, prefix), ...rule.limit });
    }
    return matched;
  }
}

function compile(pattern: string, limit: QuotaLimit, source: string): CompiledRule {
  const name = JSON.stringify(pattern);
  if (pattern !== '' && !pattern.endsWith('/')) throw invalid(`pattern ${name} must be "" (the whole storage) or end with "/" (a folder)`, source);
  const segments = pattern === '' ? [] : pattern.slice(0, -1).split('/');
  if (segments.some((s) => s === '' || s === '.' || s === '..' || (s.includes('*') && s !== '*'))) {
    throw invalid(`pattern ${name} has an empty, "." or ".." segment, or a "*" that is not a whole segment`, source);
  }
  if (limit === null || typeof limit !== 'object') throw invalid(`pattern ${name} needs an object such as {"maxBytes": 1073741824}`, source);
  const unknown = Object.keys(limit).filter((k) => !['maxBytes', 'maxObjects', 'warnAt'].includes(k));
  if (unknown.length > 0) throw invalid(`pattern ${name} has unknown field(s) ${unknown.join(', ')}: use maxBytes, maxObjects, warnAt`, source);
  const maxBytes = checkCount(limit.maxBytes, `${name}.maxBytes`, source);
  const maxObjects = checkCount(limit.maxObjects, `${name}.maxObjects`, source);
  if (maxBytes === undefined && maxObjects === undefined) throw invalid(`pattern ${name} needs maxBytes or maxObjects`, source);
  const warnAt = limit.warnAt ?? DEFAULT_WARN_AT;
  if (typeof warnAt !== 'number' || !(warnAt > 0 && warnAt <= 1)) throw invalid(`${name}.warnAt must be a fraction above 0 and at most 1 (got ${JSON.stringify(limit.warnAt)})`, source);
  return { pattern, segments, limit: { ...(maxBytes === undefined ? {} : { maxBytes }), ...(maxObjects === undefined ? {} : { maxObjects }), warnAt } };
}

/** Parses quota rules from JSON text (STOWAGE_QUOTAS), E_CONFIG_INVALID naming `variable` when it is not JSON. */
export function parseQuotaRules(text: string, variable = 'STOWAGE_QUOTAS'): QuotaRules {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw invalid(`${variable} is not JSON: ${(err as Error).message}`, variable);
  }
  // The matcher checks the shape, naming the variable.
  new QuotaMatcher(value as QuotaRules, variable);
  return value as QuotaRules;
}
