/**
 * A child process for the kill-and-resume chaos test and benchmark: builds a storage from
 * the options in argv[2] (JSON: `{ storage, uploads: [{ key, path }] }`), prints `started`,
 * runs every `putFile` at once, and prints one JSON line per upload that completed
 * (`{ key, size, sha256, resumedBytes }`), or `{ key, error }` for one that failed. The
 * parent SIGKILLs it at will, and runs it again to resume.
 */
import { createStorage, type CreateStorageOptions } from '../../src/index.js';

/** What the parent passes. */
export interface PutFilesJob {
  storage: CreateStorageOptions;
  uploads: { key: string; path: string }[];
}

/** One line of output per upload. */
export type PutFilesLine = { key: string; size: number; sha256?: string; resumedBytes: number } | { key: string; error: string };

const job = JSON.parse(process.argv[2] ?? '{}') as PutFilesJob;
const storage = createStorage(job.storage);
process.stdout.write('started\n');
await Promise.all(
  job.uploads.map(async ({ key, path }) => {
    let line: PutFilesLine;
    try {
      const info = await storage.putFile(key, path);
      line = { key, size: info.size, sha256: info.sha256, resumedBytes: info.resumedBytes };
    } catch (err) {
      line = { key, error: String(err) };
    }
    process.stdout.write(`${JSON.stringify(line)}\n`);
  }),
);
await storage.close();
