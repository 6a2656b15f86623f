/**
 * Small-object throughput: 10,000 objects of 4 KiB, put, stat, get and list, in ops/s,
 * at concurrency 16. The anchor is plain node:fs doing the least that gives the same
 * guarantee in the same run: put = write a temp file, fsync, rename (a crash-safe write);
 * stat = fs.stat; get = fs.readFile; list = one recursive readdir plus a stat per file.
 * The memory driver is shown for scale. BENCH_OBJECTS changes the count.
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync, rmSync } from 'node:fs';
import { open, readdir, readFile, rename, stat } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { createStorage, type Storage } from '../src/index.js';
import { pool, table, timed } from './lib.js';

const count = Number(process.env.BENCH_OBJECTS ?? 10_000);
const concurrency = 16;
const base = join(process.cwd(), '.bench-tmp', 'ops');
rmSync(base, { recursive: true, force: true });
mkdirSync(base, { recursive: true });

const body = randomBytes(4096);
// 100 folders of 100 objects: a realistic fan-out (e.g. one folder per user).
const keys = Array.from({ length: count }, (_, i) => `u${String(i % 100).padStart(3, '0')}/${String(i).padStart(6, '0')}.bin`);

type Ops = Record<'put' | 'stat' | 'get' | 'list', number>;

async function rawFs(root: string): Promise<Ops> {
  for (const k of keys) mkdirSync(dirname(join(root, k)), { recursive: true });
  mkdirSync(join(root, '.tmp'), { recursive: true });
  let n = 0;
  const put = await timed(() =>
    pool(keys, concurrency, async (k) => {
      const tmp = join(root, '.tmp', String(n++));
      const handle = await open(tmp, 'wx');
      await handle.writeFile(body);
      await handle.sync();
      await handle.close();
      await rename(tmp, join(root, k));
    }),
  );
  const st = await timed(() => pool(keys, concurrency, (k) => stat(join(root, k))));
  const get = await timed(() => pool(keys, concurrency, (k) => readFile(join(root, k))));
  const list = await timed(async () => {
    const files = (await readdir(root, { recursive: true, withFileTypes: true })).filter((d) => d.isFile());
    await pool(files, concurrency, (d) => stat(join(d.parentPath, d.name)));
  });
  return { put: count / put, stat: count / st, get: count / get, list: count / list };
}

async function stowage(storage: Storage): Promise<Ops> {
  const put = await timed(() => pool(keys, concurrency, (k) => storage.put(k, body)));
  const st = await timed(() => pool(keys, concurrency, (k) => storage.stat(k)));
  const get = await timed(() => pool(keys, concurrency, (k) => storage.get(k)));
  let listed = 0;
  const list = await timed(async () => {
    for await (const _info of storage.listAll()) listed++;
  });
  if (listed !== count) throw new Error(`listed ${listed} of ${count}`);
  return { put: count / put, stat: count / st, get: count / get, list: count / list };
}

try {
  const anchor = await rawFs(join(base, 'raw'));
  const fs = await stowage(createStorage({ driver: 'fs', root: join(base, 'stowage') }));
  const fsNoSync = await stowage(createStorage({ driver: 'fs', root: join(base, 'stowage-nosync'), fsync: false }));
  const memory = await stowage(createStorage({ driver: 'memory' }));
  const rows: (string | number)[][] = [['op', 'raw node:fs ops/s', 'fs driver ops/s', 'ratio', 'fs (fsync off) ops/s', 'memory ops/s']];
  for (const op of ['put', 'stat', 'get', 'list'] as const) rows.push([op, anchor[op], fs[op], fs[op] / anchor[op], fsNoSync[op], memory[op]]);
  console.log(`\n${count} objects of 4 KiB, concurrency ${concurrency}, Node ${process.version}`);
  table(rows);
} finally {
  rmSync(base, { recursive: true, force: true });
}
