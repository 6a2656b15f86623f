/**
 * Shared pieces of the conformance suite: the target a driver provides, and small
 * helpers for bodies, digests and error assertions.
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import type { ErrorCode, Storage, StorageOptions } from '../../src/index.js';
import { StorageError } from '../../src/index.js';

/** What a driver's test file hands the suite. */
export interface ConformanceTarget {
  /** Shown in test names. */
  name: string;
  /** A fresh, empty storage; `options` carries signing settings for backends that need them. */
  create(options?: StorageOptions): Promise<Storage>;
  /** Removes what `create` made. */
  destroy(storage: Storage): Promise<void>;
}

/**
 * A target whose storages each live in a fresh temporary folder: `make` builds one over
 * the folder, and `destroy` closes it and removes the folder.
 */
export function inTempRoot(name: string, make: (root: string, options: StorageOptions) => Storage): ConformanceTarget {
  const roots = new WeakMap<Storage, string>();
  return {
    name,
    create: async (options = {}) => {
      const root = await mkdtemp(join(tmpdir(), 'stowage-conformance-'));
      const storage = make(root, options);
      roots.set(storage, root);
      return storage;
    },
    destroy: async (storage) => {
      await storage.close();
      const root = roots.get(storage);
      if (root) await rm(root, { recursive: true, force: true });
    },
  };
}

/** Signing settings the suite passes to `create`. */
export const SIGNING: StorageOptions = { baseUrl: 'http://127.0.0.1:8080', signingSecret: 'conformance-secret-0123456789' };

/** Hex SHA-256 of bytes. */
export function sha256(data: Uint8Array | string): string {
  return createHash('sha256').update(data).digest('hex');
}

/** Reads a stream fully. */
export async function collect(stream: AsyncIterable<Uint8Array>): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(Buffer.from(chunk));
  return Buffer.concat(chunks);
}

/** A Node Readable that yields `parts` one by one: a body of unknown length. */
export function chunked(...parts: (string | Buffer)[]): Readable {
  return Readable.from(parts.map((p) => (typeof p === 'string' ? Buffer.from(p) : p)));
}

/** A stream that yields some bytes and then fails, like a client that disconnects. */
export function failingBody(bytesBeforeFailure: number): Readable {
  async function* gen() {
    yield randomBytes(bytesBeforeFailure);
    await new Promise((r) => setImmediate(r));
    throw new Error('connection reset by peer');
  }
  return Readable.from(gen());
}

/** Asserts that `promise` rejects with a StorageError of `code`; returns the error. */
export async function rejectsWith(promise: Promise<unknown>, code: ErrorCode, messageIncludes?: string | RegExp): Promise<StorageError> {
  try {
    await promise;
  } catch (err) {
    assert.ok(err instanceof StorageError, `expected a StorageError, got ${String(err)}`);
    assert.equal(err.code, code, `expected ${code}, got ${err.code}: ${err.message}`);
    if (typeof messageIncludes === 'string') assert.ok(err.message.includes(messageIncludes), `message "${err.message}" lacks "${messageIncludes}"`);
    else if (messageIncludes) assert.match(err.message, messageIncludes);
    return err;
  }
  assert.fail(`expected ${code}, but the call succeeded`);
}

/** Every key of a listing, following cursors. */
export async function allKeys(storage: Storage, prefix?: string): Promise<string[]> {
  const keys: string[] = [];
  for await (const info of storage.listAll({ prefix })) keys.push(info.key);
  return keys;
}

/** Sorts keys in UTF-8 byte order, computed independently of the library. */
export function byteSorted(keys: string[]): string[] {
  return [...keys].sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
}
