/**
 * The quota layer's cost (issue 14, P9), in one run, on the fs driver and on Ceph RGW
 * (started here unless STOWAGE_TEST_S3_ENDPOINT is set), with a redis-server started
 * here unless STOWAGE_TEST_REDIS_URL is set:
 *
 * - P9: STOWAGE_BENCH_OBJECTS (100,000) existing objects of 256 bytes in
 *   STOWAGE_BENCH_USERS (1,000) folders `users/u0000/`.., put once per backend (64 at a
 *   time), then STOWAGE_BENCH_PUTS (2,000) PUTs of 4 KiB into random user folders, 16 at a
 *   time, under `{ "": { maxBytes: 2^50 }, "users/*\/": { maxBytes: 1 GiB, maxObjects: 100000 } }`.
 *   Quotas ON (embedded store; Redis store) over quotas OFF, the anchor: the same storage
 *   without the layer. A round puts the 2,000 of each mode in STOWAGE_BENCH_SLICES (8)
 *   slices that take turns in a rotating order (the machine is shared: a load that comes
 *   and goes falls on all three); every PUT writes a new key. Printed: each round's
 *   ratios, and their median over STOWAGE_BENCH_ROUNDS (5) rounds. Goals: >= 0.95
 *   embedded, >= 0.9 Redis. Beside them, the CPU time a PUT takes in each mode (this
 *   process, redis-server, and on RGW the Ceph daemons: `cpuSeconds`), steadier than
 *   PUTs/s on a shared machine and what bounds them on 2 cores.
 * - The users' plan (seeds: `get_total_size()` lists the whole bucket before every write
 *   and compares the total with the limit): STOWAGE_BENCH_LPW_FS (20) writes on fs,
 *   STOWAGE_BENCH_LPW_S3 (10) on RGW, 16 at a time, as writes/s over the quotas-off
 *   median of the same run.
 * - Reconcile of all the objects (the one that makes the counters count what was put
 *   before), for each store: seconds, objects/s, and its time over that of a plain
 *   `storage.usage()` listing of the same objects, measured just before it.
 *
 * STOWAGE_BENCH_BACKENDS=fs (or s3) measures one backend only. About 25 minutes in all
 * at the default sizes on a shared 2-core machine, half of it putting the existing
 * objects (about 300/s on fs, 200/s on RGW) and a fifth the list-per-write writes (each
 * lists 100,000 objects: lower STOWAGE_BENCH_LPW_* for a quicker run). With STOWAGE_TEST_REDIS_URL
 * set, databases 14 (fs) and 15 (RGW) of that Redis hold the counters.
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { ensureRedisServer } from '../scripts/redis-server.mjs';
import { createStorage, quotaOf, StorageError, type CreateStorageOptions, type QuotaRules, type ReconcileReport, type Storage } from '../src/index.js';
import { benchS3Server, cpuSeconds, median, pool, table, timed } from './lib.js';

const env = (name: string, fallback: number) => Number(process.env[name] ?? fallback);
const OBJECTS = env('STOWAGE_BENCH_OBJECTS', 100_000);
const USERS = env('STOWAGE_BENCH_USERS', 1000);
const PUTS = env('STOWAGE_BENCH_PUTS', 2000);
const ROUNDS = env('STOWAGE_BENCH_ROUNDS', 5);
const SLICES = env('STOWAGE_BENCH_SLICES', 8);
const LIST_PER_WRITE = { fs: env('STOWAGE_BENCH_LPW_FS', 20), s3: env('STOWAGE_BENCH_LPW_S3', 10) };
const BACKENDS = (process.env.STOWAGE_BENCH_BACKENDS ?? 'fs,s3').split(',');
const CONCURRENCY = 16;
const POPULATE_CONCURRENCY = 64;
const TOTAL_LIMIT = 2 ** 50;
const RULES: QuotaRules = { '': { maxBytes: TOTAL_LIMIT }, 'users/*/': { maxBytes: 1024 ** 3, maxObjects: 100_000 } };

const base = join(process.cwd(), '.bench-tmp', 'quota');
const small = randomBytes(256);
const body = randomBytes(4096);
const user = (i: number) => `users/u${String(i).padStart(4, '0')}/`;
const randomUser = () => user(Math.floor(Math.random() * USERS));

type Mode = 'off' | 'embedded' | 'redis';
const MODES: Mode[] = ['off', 'embedded', 'redis'];

interface Backend {
  name: 'fs' | 's3';
  label: string;
  /** The storage without quotas. */
  plain: CreateStorageOptions;
  /** The storage that puts the existing objects (on fs without fsync: the same files, sooner). */
  populate: CreateStorageOptions;
  /** Where the embedded store's counters live (undefined: the fs root's `.stowage/quota/`). */
  dir?: string;
  /** This backend's Redis database, so the two backends never share counters. */
  redisUrl: string;
  /** The servers on this machine whose CPU a PUT costs besides this process's (see `cpuSeconds`). */
  servers: readonly string[];
}

/** What one mode's PUTs of a round took: wall seconds, and CPU seconds of this process and the servers. */
interface Spent {
  seconds: number;
  cpu: number;
}

/** Puts the existing objects: USERS folders, OBJECTS / USERS objects each. */
async function populate(options: CreateStorageOptions): Promise<number> {
  const perUser = Math.ceil(OBJECTS / USERS);
  const keys = Array.from({ length: OBJECTS }, (_, i) => `${user(i % USERS)}f${String(Math.floor(i / USERS)).padStart(String(perUser).length, '0')}.bin`);
  const storage = createStorage(options);
  try {
    return await timed(() => pool(keys, POPULATE_CONCURRENCY, (key) => storage.put(key, small)));
  } finally {
    await storage.close();
  }
}

/** Puts `count` new 4 KiB objects into random user folders, CONCURRENCY at a time; returns what it took. */
async function putSpent(storage: Storage, tag: string, count: number, servers: readonly string[]): Promise<Spent> {
  const keys = Array.from({ length: count }, (_, i) => `${randomUser()}${tag}-${i}.bin`);
  const cpu = cpuSeconds(servers);
  const seconds = await timed(() => pool(keys, CONCURRENCY, (key) => storage.put(key, body)));
  return { seconds, cpu: cpuSeconds(servers) - cpu };
}

/** A round's figures of one mode: PUTs/s, and µs of CPU (this process and the servers) per PUT. */
interface ModeFigures {
  rate: number;
  cpuUs: number;
}

/**
 * One round: PUTS PUTs for each mode, in SLICES slices that take turns (in an order that
 * rotates), so a load that comes and goes on the shared machine falls on every mode
 * alike. Returns each mode's PUTs/s and CPU per PUT over its slices.
 */
async function putRound(storages: Record<Mode, Storage>, round: number, servers: readonly string[]): Promise<Record<Mode, ModeFigures>> {
  const spent: Record<Mode, Spent> = { off: { seconds: 0, cpu: 0 }, embedded: { seconds: 0, cpu: 0 }, redis: { seconds: 0, cpu: 0 } };
  const perSlice = Math.ceil(PUTS / SLICES);
  for (let slice = 0; slice < SLICES; slice++) {
    for (let i = 0; i < MODES.length; i++) {
      const mode = MODES[(i + round + slice) % MODES.length] as Mode;
      const { seconds, cpu } = await putSpent(storages[mode], `r${round}s${slice}-${mode}`, perSlice, servers);
      spent[mode].seconds += seconds;
      spent[mode].cpu += cpu;
    }
  }
  const puts = perSlice * SLICES;
  const figures = (mode: Mode): ModeFigures => ({ rate: puts / spent[mode].seconds, cpuUs: (spent[mode].cpu / puts) * 1e6 });
  return { off: figures('off'), embedded: figures('embedded'), redis: figures('redis') };
}

/**
 * The users' plan: before every write, the whole storage is listed (`get_total_size()`
 * lists the bucket's prefix) and the total compared with the limit. Returns writes/s.
 */
async function listPerWriteRate(storage: Storage, writes: number): Promise<number> {
  const keys = Array.from({ length: writes }, (_, i) => `${randomUser()}lpw-${i}.bin`);
  const seconds = await timed(() =>
    pool(keys, CONCURRENCY, async (key) => {
      const { bytes } = await storage.usage();
      if (bytes + body.length > TOTAL_LIMIT) throw new StorageError('E_QUOTA_EXCEEDED', 'storage quota exceeded');
      await storage.put(key, body);
    }),
  );
  return writes / seconds;
}

/** Times a plain listing, then the reconcile of `storage`'s quotas (its store opened first: not a cost of the reconcile). */
async function reconcileTimes(plain: Storage, storage: Storage): Promise<{ usage: number; reconcile: number; report: ReconcileReport }> {
  const control = quotaOf(storage.driver);
  if (control === undefined) throw new Error('no quota layer');
  await control.open();
  let objects = 0;
  const usage = await timed(async () => {
    objects = (await plain.usage()).objects;
  });
  let report: ReconcileReport | undefined;
  const reconcile = await timed(async () => {
    report = await control.reconcile();
  });
  if (report === undefined || report.objects !== objects) throw new Error(`reconcile listed ${report?.objects} objects, usage ${objects}`);
  return { usage, reconcile, report };
}

async function measure(b: Backend): Promise<void> {
  const plain = createStorage(b.plain);
  const withQuotas: Record<Exclude<Mode, 'off'>, Storage> = {
    embedded: createStorage({ ...b.plain, quotas: { rules: RULES, ...(b.dir === undefined ? {} : { dir: b.dir }) } }),
    redis: createStorage({ ...b.plain, quotas: { rules: RULES, redisUrl: b.redisUrl } }),
  };
  const storages: Record<Mode, Storage> = { off: plain, ...withQuotas };
  try {
    console.log(`\n== ${b.label}`);
    const populated = await populate(b.populate);
    console.log(`populated ${OBJECTS} objects of ${small.length} B in ${USERS} folders, ${POPULATE_CONCURRENCY} at a time: ${populated.toFixed(1)} s (${(OBJECTS / populated).toFixed(0)} objects/s)`);

    // The layer counts existing objects only after a reconcile: it is also the measurement.
    const rows: (string | number)[][] = [['reconcile', 'objects', 'seconds', 'objects/s', 'usage() seconds', 'reconcile / usage()', 'counters', 'drift repaired']];
    for (const mode of ['embedded', 'redis'] as const) {
      const { usage, reconcile, report } = await reconcileTimes(plain, withQuotas[mode]);
      rows.push([`${mode} store`, report.objects, reconcile, report.objects / reconcile, usage, (reconcile / usage).toFixed(3), String(report.counters), String(report.drift.length)]);
    }
    table(rows);

    const rates: Record<Mode, number[]> = { off: [], embedded: [], redis: [] };
    const cpus: Record<Mode, number[]> = { off: [], embedded: [], redis: [] };
    const ratios: Record<Exclude<Mode, 'off'>, number[]> = { embedded: [], redis: [] };
    const cpuRatios: Record<Exclude<Mode, 'off'>, number[]> = { embedded: [], redis: [] };
    for (let round = 0; round < ROUNDS; round++) {
      const figures = await putRound(storages, round, b.servers);
      for (const mode of MODES) {
        rates[mode].push(figures[mode].rate);
        cpus[mode].push(figures[mode].cpuUs);
      }
      const { off, embedded, redis } = figures;
      for (const mode of ['embedded', 'redis'] as const) {
        ratios[mode].push(figures[mode].rate / off.rate);
        cpuRatios[mode].push(off.cpuUs / figures[mode].cpuUs);
      }
      const show = (f: ModeFigures) => `${f.rate.toFixed(0)} PUT/s ${f.cpuUs.toFixed(0)} µs CPU`;
      console.log(`round ${round + 1}: off ${show(off)}, embedded ${show(embedded)} (${(embedded.rate / off.rate).toFixed(3)}), redis ${show(redis)} (${(redis.rate / off.rate).toFixed(3)})`);
    }
    const offMedian = median(rates.off);
    const writes = LIST_PER_WRITE[b.name];
    const lpw = writes > 0 ? await listPerWriteRate(plain, writes) : Number.NaN;

    console.log(`\n${b.label}: ${PUTS} PUTs of 4 KiB, ${CONCURRENCY} at a time, over ${OBJECTS} existing objects; median of ${ROUNDS} rounds (the ratio: median of the rounds' ratios)`);
    console.log(`CPU per PUT: this process and ${b.servers.join(', ')}; its ratio is the anchor's CPU per PUT over the case's`);
    table([
      ['case', 'PUT/s', 'ratio to quotas off', 'goal', 'µs CPU per PUT', 'CPU ratio'],
      ['quotas off (anchor)', offMedian, '1', '', median(cpus.off), '1'],
      ['quotas on, embedded store', median(rates.embedded), median(ratios.embedded).toFixed(3), '>= 0.95', median(cpus.embedded), median(cpuRatios.embedded).toFixed(3)],
      ['quotas on, Redis store', median(rates.redis), median(ratios.redis).toFixed(3), '>= 0.9', median(cpus.redis), median(cpuRatios.redis).toFixed(3)],
      [`list per write (users' plan, ${writes} writes)`, lpw, (lpw / offMedian).toFixed(4), '', '', ''],
    ]);
  } finally {
    await Promise.all(Object.values(storages).map((s) => s.close()));
  }
}

rmSync(base, { recursive: true, force: true });
mkdirSync(base, { recursive: true });
const redisServer = ensureRedisServer();
if (redisServer.error) throw new Error(redisServer.error);
Object.assign(process.env, redisServer.env);
const redisUrl = (db: number) => {
  const url = new URL(process.env.STOWAGE_TEST_REDIS_URL as string);
  url.pathname = `/${db}`;
  return url.toString();
};
console.log(`quota benchmark: Node ${process.version}, ${OBJECTS} objects in ${USERS} folders, ${PUTS} PUTs a round, ${ROUNDS} rounds`);
try {
  if (BACKENDS.includes('fs')) {
    const root = join(base, 'fs');
    mkdirSync(root, { recursive: true });
    await measure({ name: 'fs', label: 'fs (local disk)', plain: { driver: 'fs', root }, populate: { driver: 'fs', root, fsync: false }, redisUrl: redisUrl(14), servers: ['redis-server'] });
  }
  if (BACKENDS.includes('s3')) {
    const server = benchS3Server();
    try {
      const { endpoint, accessKeyId, secretAccessKey } = server;
      const s3: CreateStorageOptions = { driver: 's3', bucket: `stowage-bench-quota-${Date.now().toString(36)}`, endpoint, accessKeyId, secretAccessKey, provider: 'ceph' };
      const setup = createStorage(s3);
      await setup.verify({ createBucket: true });
      await setup.close();
      await measure({ name: 's3', label: 'S3 (Ceph RGW on loopback)', plain: s3, populate: s3, dir: join(base, 's3-quota'), redisUrl: redisUrl(15), servers: ['redis-server', 'radosgw', 'ceph-osd', 'ceph-mon', 'ceph-mgr'] });
    } finally {
      server.stop();
    }
  }
} finally {
  redisServer.stop();
  rmSync(base, { recursive: true, force: true });
}
