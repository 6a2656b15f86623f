/**
 * A set of keys kept in UTF-8 byte order, so listings page by binary search instead
 * of sorting the whole store on every call.
 */
import { compareKeys } from '../../core/keys.js';

/** A sorted array of distinct keys with binary-search insert, remove and seek. */
export class SortedKeys {
  readonly #keys: string[] = [];

  /** How many keys are held. */
  get size(): number {
    return this.#keys.length;
  }

  /** The key at position `i` (0 <= i < size). */
  at(i: number): string {
    return this.#keys[i] as string;
  }

  /** The position of the first key >= `key` (size when there is none). */
  firstAtOrAfter(key: string): number {
    let lo = 0;
    let hi = this.#keys.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (compareKeys(this.#keys[mid] as string, key) < 0) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  /** Adds a key that is not present yet. */
  add(key: string): void {
    this.#keys.splice(this.firstAtOrAfter(key), 0, key);
  }

  /** Removes a key if present. */
  remove(key: string): void {
    const i = this.firstAtOrAfter(key);
    if (this.#keys[i] === key) this.#keys.splice(i, 1);
  }
}
