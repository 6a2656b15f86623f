/**
 * Plain file I/O helpers of the filesystem driver: writing a body with overlapping
 * writes, copying a file while hashing it, and describing a regular file.
 */
import { createReadStream } from 'node:fs';
import { copyFile, type FileHandle } from 'node:fs/promises';
import { PutBody, type PutBodyChecks } from '../../core/body.js';
import { notFound } from '../../core/objects.js';
import type { ReadIo } from './read-io.js';
import type { DataStats } from './sidecar.js';

/**
 * Size and mtime of the regular file at `path`, not following a link there; E_NOT_FOUND
 * for anything else (a folder, a FIFO, a symlink swapped in).
 */
export async function statFile(path: string, key: string, io: ReadIo): Promise<DataStats> {
  const st = await io.lstat(path);
  if (!st.isFile()) throw notFound(key);
  return { size: st.size, mtimeMs: st.mtimeMs };
}

/** How many chunk writes may be in flight at once while the next chunks are hashed. */
const WRITES_IN_FLIGHT = 4;

/**
 * Writes every chunk of the body at its own offset, keeping several writes in flight
 * while the next chunks are read and hashed, so hashing overlaps the disk I/O. Memory
 * stays bounded by WRITES_IN_FLIGHT chunks.
 */
export async function writeBody(handle: FileHandle, body: AsyncIterable<Uint8Array>): Promise<void> {
  const inFlight = new Set<Promise<void>>();
  const writeAt = async (chunk: Uint8Array, position: number): Promise<void> => {
    for (let offset = 0; offset < chunk.byteLength; ) {
      const { bytesWritten } = await handle.write(chunk, offset, chunk.byteLength - offset, position + offset);
      offset += bytesWritten;
    }
  };
  let position = 0;
  try {
    for await (const chunk of body) {
      if (inFlight.size >= WRITES_IN_FLIGHT) await Promise.race(inFlight);
      const write = writeAt(chunk, position);
      position += chunk.byteLength;
      inFlight.add(write);
      write.then(() => inFlight.delete(write), () => undefined);
    }
    await Promise.all(inFlight);
  } finally {
    // Never leave a write running against a handle the caller is about to close.
    await Promise.allSettled(inFlight);
  }
}

/** Chunk size of the hashing read beside a kernel copy. */
const HASH_CHUNK_BYTES = 1024 * 1024;

/**
 * Copies the open file `source` to `dest` with the kernel's copy (copy_file_range, or a
 * reflink where the filesystem has them; `sourcePath` names that same open file) while
 * hashing it in parallel with `checks` applied. Returns the SHA-256.
 */
export async function copyHashed(source: FileHandle, sourcePath: string, dest: string, checks: PutBodyChecks): Promise<string | undefined> {
  const hashing = new PutBody(createReadStream('', { fd: source, start: 0, autoClose: false, highWaterMark: HASH_CHUNK_BYTES }), checks);
  const drain = async () => {
    for await (const _chunk of hashing); // hashing happens as the body is consumed
  };
  // Wait for both even when one fails, so no copy is still writing when the caller removes `dest`.
  const [copied, hashed] = await Promise.allSettled([copyFile(sourcePath, dest), drain()]);
  if (copied.status === 'rejected') throw copied.reason;
  if (hashed.status === 'rejected') throw hashed.reason;
  return hashing.complete().sha256;
}
