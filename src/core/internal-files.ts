/**
 * Internal files: small blobs Stowage keeps in a backend for itself (rendered image
 * variants, receipts of finished uploads), beside the objects but never among them. They
 * live in the backend's reserved area (`.stowage/internal/` on fs and S3), so any
 * process using the same backend finds them, while listings, quotas, the outbox and
 * migrations see only objects. This file holds their names' rules and the page type;
 * the operations are part of the {@link Driver} contract (`putInternal` and the rest).
 */
import { StorageError } from './errors.js';

/** One page of internal file names, in byte order, and the cursor of the next page when there is one. */
export interface InternalFilesPage {
  names: string[];
  cursor?: string;
}

/** Options of `putInternal`. */
export interface InternalPutOptions {
  /**
   * The file is a cache that can be made again (a rendered variant): a crash or power
   * loss may lose it, or leave it empty or short, so the reader must check what it reads.
   * The fs driver then skips its fsyncs. Default false: the file survives a crash once
   * the put resolved.
   */
  cache?: boolean;
}

/** Names per page of `listInternal`. */
export const INTERNAL_PAGE_SIZE = 1000;

/** The longest internal file name, in characters (all ASCII). */
const MAX_NAME_LENGTH = 512;

/**
 * One segment: letters, digits, `_`, `-` and `.`, never first: no `.` or `..`, no hidden
 * files that could meet a driver's own temp files, the same on every filesystem.
 */
const SEGMENT = /^[A-Za-z0-9_-][A-Za-z0-9._-]{0,199}$/;

/** Refuses an internal file name that is not `/`-separated segments of {@link SEGMENT}, with E_INVALID_ARGUMENT. */
export function checkInternalName(name: string): string {
  if (typeof name !== 'string' || name.length === 0 || name.length > MAX_NAME_LENGTH || !name.split('/').every((s) => SEGMENT.test(s))) {
    throw new StorageError('E_INVALID_ARGUMENT', `invalid internal file name ${JSON.stringify(name)}: use "/"-separated segments of letters, digits, "_", "-" and "." (not first), at most ${MAX_NAME_LENGTH} characters`);
  }
  return name;
}

/** Refuses a listing prefix that is not empty or a valid name followed by `/`. */
export function checkInternalPrefix(prefix: string): string {
  if (prefix !== '' && !(prefix.endsWith('/') && checkInternalName(prefix.slice(0, -1)))) {
    throw new StorageError('E_INVALID_ARGUMENT', `invalid internal listing prefix ${JSON.stringify(prefix)}: it must be empty or a name ending in "/"`);
  }
  return prefix;
}

/**
 * Internal files kept in memory: the memory driver's, and the reference the others are
 * tested against. Names are kept sorted on demand (listing is rare: purges and checks).
 */
export class InternalFilesInMemory {
  readonly #files = new Map<string, Uint8Array>();

  /** Stores a copy of `data` at `name`, replacing any file there. */
  put(name: string, data: Uint8Array): void {
    this.#files.set(checkInternalName(name), Uint8Array.from(data));
  }

  /** A copy of the file's bytes; undefined when there is none. */
  read(name: string): Uint8Array | undefined {
    const data = this.#files.get(checkInternalName(name));
    return data && Uint8Array.from(data);
  }

  /** Removes these files; missing ones are fine. */
  delete(names: readonly string[]): void {
    for (const name of names.map(checkInternalName)) this.#files.delete(name);
  }

  /** A page of the names under `prefix` after `cursor`. */
  list(prefix: string, cursor: string | undefined): InternalFilesPage {
    checkInternalPrefix(prefix);
    const names = [...this.#files.keys()].filter((n) => n.startsWith(prefix) && (cursor === undefined || n > cursor)).sort();
    return pageOf(names);
  }
}

/** The first page of `sortedNames` (all after the cursor already), with a cursor when more follow. */
export function pageOf(sortedNames: string[]): InternalFilesPage {
  if (sortedNames.length <= INTERNAL_PAGE_SIZE) return { names: sortedNames };
  const names = sortedNames.slice(0, INTERNAL_PAGE_SIZE);
  return { names, cursor: names[names.length - 1] };
}
