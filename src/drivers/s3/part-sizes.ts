/**
 * How big each part of a multipart upload is, within the provider's limits.
 *
 * A body of known size (a file) gets equal parts, the smallest multiple of 1 MiB at
 * least `partSize` that fits the part limit. A body of unknown size (a stream) cannot
 * be measured first, so where the provider allows unequal parts the part size grows as
 * the upload goes: the parts are cut into {@link GROWTH_GROUPS} groups of equal count,
 * and each group's parts are twice the size of the previous group's (never above 5
 * GiB). Small bodies keep small parts, and the largest body still fits the part limit:
 * with the defaults (8 MiB, 10,000 parts) the first 1,000 parts hold 7.8 GiB and all of
 * them about 8 TiB. Where every part but the last must be equal (R2), the size stays
 * `partSize` and a body past `partSize x maxParts` fails with E_TOO_LARGE naming the limit.
 */
import { StorageError } from '../../core/errors.js';
import { MAX_SINGLE_PUT as MAX_PART_SIZE } from './options.js';

const MiB = 1024 * 1024;
/** A growing schedule doubles the part size this many times at most (once per group of parts). */
export const GROWTH_GROUPS = 10;

/** The limits a schedule keeps to. */
export interface PartLimits {
  /** The first (and, with `equalParts`, every) part's size. */
  partSize: number;
  /** The most parts one upload may have. */
  maxParts: number;
  /** Every part but the last must have the same size (R2). */
  equalParts: boolean;
  /** The provider's name, for error messages. */
  provider: string;
}

/** The part sizes of uploads of unknown length, and what they can hold. */
export class PartSchedule {
  readonly limits: PartLimits;
  /** How many consecutive parts share one size. */
  readonly #groupParts: number;
  /** The most bytes an upload following this schedule can hold. */
  readonly capacity: number;

  constructor(limits: PartLimits) {
    this.limits = limits;
    this.#groupParts = Math.max(1, Math.floor(limits.maxParts / GROWTH_GROUPS));
    let capacity = 0;
    for (let first = 1; first <= limits.maxParts; first += this.#groupParts) {
      capacity += this.sizeOf(first) * Math.min(this.#groupParts, limits.maxParts - first + 1);
    }
    this.capacity = capacity;
  }

  /** The size of part `partNumber` (from 1); the last part of an upload may be smaller. */
  sizeOf(partNumber: number): number {
    const { partSize, equalParts } = this.limits;
    if (equalParts) return partSize;
    const group = Math.floor((partNumber - 1) / this.#groupParts);
    return Math.min(MAX_PART_SIZE, partSize * 2 ** group);
  }

  /** The error for a body that needs part `partNumber`, one past the limit. */
  tooLarge(): StorageError {
    const { partSize, maxParts, equalParts, provider } = this.limits;
    const why = equalParts
      ? `${provider} needs equal parts, so an upload of unknown size holds at most ${maxParts} parts of partSize ${partSize} bytes = ${this.capacity} bytes`
      : `an upload of unknown size holds at most ${this.capacity} bytes (${maxParts} parts, growing from partSize ${partSize} bytes)`;
    return new StorageError('E_TOO_LARGE', `the body is too large: ${why}; raise partSize (up to ${MAX_PART_SIZE}), or store it with putFile, whose size is known`, {
      details: { maxParts, partSize, capacity: this.capacity, equalParts },
    });
  }
}

/**
 * The part size for a body of known `size`: `partSize`, or the smallest multiple of 1
 * MiB above it that fits `maxParts` equal parts. E_TOO_LARGE past 5 GiB parts.
 */
export function equalPartSize(size: number, partSize: number, maxParts: number): number {
  const needed = Math.ceil(Math.ceil(size / maxParts) / MiB) * MiB;
  const chosen = Math.max(partSize, needed);
  if (chosen > MAX_PART_SIZE) {
    throw new StorageError('E_TOO_LARGE', `the file is too large: ${size} bytes need more than ${maxParts} parts of ${MAX_PART_SIZE} bytes`, { details: { size, maxParts } });
  }
  return chosen;
}
