/**
 * Durations written as text (`90s`, `30m`, `24h`, `7d`), as the CLI's `--older-than`
 * and the lifecycle rules (STOWAGE_LIFECYCLE, STOWAGE_LIFECYCLE_INTERVAL) take them: one
 * grammar, so a value that works in one place works in every other.
 */
import { StorageError } from './errors.js';

/** What a duration looks like, for messages. */
export const DURATION_HELP = 'a duration like 90s, 30m, 24h or 7d';

const UNIT_MS = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 } as const;

/** The milliseconds of a duration like `30m`, `24h`, `7d` or `90s`; undefined when `text` is not one. */
export function durationMs(text: string): number | undefined {
  const m = /^(\d+(?:\.\d+)?)(s|m|h|d)$/.exec(text.trim());
  if (!m) return undefined;
  return Number(m[1]) * UNIT_MS[m[2] as keyof typeof UNIT_MS];
}

/** Parses a duration into milliseconds; anything else is E_INVALID_ARGUMENT naming `option`. */
export function parseDuration(text: string, option: string): number {
  const ms = durationMs(text);
  if (ms === undefined) throw new StorageError('E_INVALID_ARGUMENT', `${option} must be ${DURATION_HELP}, got ${JSON.stringify(text)}`);
  return ms;
}
