/**
 * Reading a local file as the parts of a resumable `putFile` (resume.ts): one part at
 * its offset, and the digests read once before the upload is created, the SHA-256 of
 * the whole file (stored with the object) and of each part (kept in the upload's state).
 * The per-part digests are what lets every later read of a part, in this run or in a
 * run that resumes it, be checked against the bytes the whole-file digest covers,
 * without hashing the whole file again in order.
 */
import { createHash } from 'node:crypto';
import type { FileHandle } from 'node:fs/promises';
import { StorageError } from '../../core/errors.js';
import type { FileIdentity } from './upload-state.js';
import { payloadSha256 } from './payload.js';

/** The open file and what identifies it. */
export interface LocalFile extends FileIdentity {
  handle: FileHandle;
  path: string;
}

/** The SHA-256 of a file and of each of its parts, in order. */
export interface FileDigests {
  sha256: string;
  partSha256: string[];
}

/** E_INVALID_ARGUMENT for a local file that changed while it was being stored. */
export function fileChanged(file: { path: string }, key: string): StorageError {
  return new StorageError('E_INVALID_ARGUMENT', `${file.path} changed while it was being stored; nothing was stored`, { key });
}

/** Reads exactly `size` bytes at `offset`; a file that got shorter is a changed file. */
export async function readAt(file: LocalFile, key: string, offset: number, size: number): Promise<Buffer> {
  const data = Buffer.allocUnsafe(size);
  for (let filled = 0; filled < size; ) {
    const { bytesRead } = await file.handle.read(data, filled, size - filled, offset + filled);
    if (bytesRead === 0) throw fileChanged(file, key);
    filled += bytesRead;
  }
  return data;
}

/** Where part `partNumber` (from 1) starts, and how long it is. */
export function partSpan(file: { size: number }, partSize: number, partNumber: number): { offset: number; size: number } {
  const offset = (partNumber - 1) * partSize;
  return { offset, size: Math.min(partSize, file.size - offset) };
}

/**
 * Reads the file once, in parts of `partSize`, and returns its digests. The reads run
 * one part ahead, each part's own digest runs on the thread pool while the main thread
 * adds the part to the whole-file hash, so the pass costs about one SHA-256 of the file
 * (Node's native hash, about 1.7 GB/s from the page cache). At most three parts are in
 * memory: the one read ahead, the one hashed, and the one whose digest is finishing.
 */
export async function fileDigests(file: LocalFile, key: string, partSize: number): Promise<FileDigests> {
  const partCount = Math.max(1, Math.ceil(file.size / partSize));
  const read = (partNumber: number) => {
    const { offset, size } = partSpan(file, partSize, partNumber);
    const reading = readAt(file, key, offset, size);
    reading.catch(() => undefined); // awaited in its turn; a failure meanwhile is not an unhandled rejection
    return reading;
  };
  const whole = createHash('sha256');
  const partSha256: string[] = [];
  let next = read(1);
  let previous: Promise<string> | undefined;
  for (let partNumber = 1; partNumber <= partCount; partNumber++) {
    const data = await next;
    if (partNumber < partCount) next = read(partNumber + 1);
    const digest = payloadSha256(data);
    whole.update(data);
    if (previous) partSha256.push(await previous);
    previous = digest;
  }
  if (previous) partSha256.push(await previous);
  return { sha256: whole.digest('hex'), partSha256 };
}
