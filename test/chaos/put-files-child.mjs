/**
 * A child process for the kill-and-resume chaos test and benchmark: builds a storage from
 * the options in argv[2] (JSON: `{ storage, uploads: [{ key, path }] }`), prints `started`,
 * runs every `putFile` at once, and prints one JSON line per upload that completed
 * (`{ key, size, sha256, resumedBytes }`), or `{ key, error }` for one that failed. The
 * parent SIGKILLs it at will, and runs it again to resume.
 *
 * Plain JavaScript, so that the benchmark can run it with plain Node over the compiled
 * build (STOWAGE_CHILD_ENTRY names dist/index.js), as an app starts; the chaos tests run it
 * over the sources through tsx (see spawnPutFiles in kill-resume.ts).
 */
const entry = process.env.STOWAGE_CHILD_ENTRY ?? new URL('../../src/index.ts', import.meta.url).href;
const { createStorage } = await import(entry);

const job = JSON.parse(process.argv[2] ?? '{}');
const storage = createStorage(job.storage);
process.stdout.write('started\n');
await Promise.all(
  job.uploads.map(async ({ key, path }) => {
    let line;
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
