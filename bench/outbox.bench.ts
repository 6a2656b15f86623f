/**
 * The outbox's cost while the backend is healthy: put throughput through
 * `createStorage({ ..., outbox })` over the same storage without one (the anchor,
 * measured in the same run), on the fs driver and, when STOWAGE_TEST_S3_ENDPOINT names
 * one, on RGW. Goal: >= 0.97. Four sizes: 4 KiB and 256 KiB buffers, 8 MiB streamed
 * bodies four at a time (all within the outbox's 64 MiB memory budget: it keeps
 * references to the chunks, no copy), and 32 MiB streamed bodies four at a time (past
 * the budget: what the budget cannot hold is copied to temp files on the way, never
 * synced). Both get the same bodies. Each round measures without and with back to back
 * (alternating which goes first) on fresh folders, removed after it; the throughputs
 * shown are medians over ROUNDS rounds, and the ratio is the median of the rounds' own
 * ratios, so a load that drifts over the run (the machine is shared) cancels out.
 * BENCH_SCALE multiplies the object counts.
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { createStorage, outboxOf, type CreateStorageOptions, type Storage, type WriteResult } from '../src/index.js';
import { mbps, median, pool, table, timed } from './lib.js';

const scale = Number(process.env.BENCH_SCALE ?? 1);
const ROUNDS = 5;
const base = join(process.cwd(), '.bench-tmp', 'outbox');

interface Case {
  name: string;
  size: number;
  count: number;
  concurrency: number;
  /** A new body for one put: a buffer, or a stream of 1 MiB chunks (as an HTTP upload arrives). */
  body: () => Buffer | Readable;
}

function cases(backend: 'fs' | 's3'): Case[] {
  const small = randomBytes(4096);
  const medium = randomBytes(256 * 1024);
  const chunk = randomBytes(1024 * 1024);
  const factor = backend === 's3' ? 0.25 : 1;
  const n = (count: number) => Math.max(8, Math.round(count * scale * factor));
  return [
    { name: '4 KiB', size: small.length, count: n(4000), concurrency: 16, body: () => small },
    { name: '256 KiB', size: medium.length, count: n(800), concurrency: 16, body: () => medium },
    { name: '8 MiB stream', size: 8 * chunk.length, count: n(48), concurrency: 4, body: () => Readable.from(Array.from({ length: 8 }, () => chunk)) },
    { name: '32 MiB stream', size: 32 * chunk.length, count: n(16), concurrency: 4, body: () => Readable.from(Array.from({ length: 32 }, () => chunk)) },
  ];
}

/** Puts `c.count` objects and returns objects per second. */
async function putRate(storage: Storage<WriteResult>, c: Case, round: number): Promise<number> {
  const keys = Array.from({ length: c.count }, (_, i) => `r${round}/${String(i % 50).padStart(2, '0')}/${i}.bin`);
  const seconds = await timed(() =>
    pool(keys, c.concurrency, async (key) => {
      const result = await storage.put(key, c.body());
      if ('status' in result) throw new Error(`a put was queued on a healthy backend: ${key}`);
    }),
  );
  return c.count / seconds;
}

/** Runs every case without and with the outbox, alternating; prints the medians and the ratio. */
async function compare(backend: 'fs' | 's3', make: (label: string) => CreateStorageOptions): Promise<number[]> {
  const rows: (string | number)[][] = [['case', 'without (obj/s)', 'with outbox (obj/s)', 'MB/s without', 'MB/s with', 'ratio']];
  const ratios: number[] = [];
  for (const c of cases(backend)) {
    const without: number[] = [];
    const withOutbox: number[] = [];
    const roundRatios: number[] = [];
    for (let round = 0; round < ROUNDS; round++) {
      for (const outbox of round % 2 === 0 ? [false, true] : [true, false]) {
        const label = `${c.name.replace(/\W+/g, '-')}-${round}-${outbox ? 'outbox' : 'plain'}`;
        const options = make(label);
        const storage: Storage<WriteResult> = outbox ? createStorage({ ...options, outbox: { dir: join(base, 'spool', label) } }) : createStorage(options as CreateStorageOptions & { outbox?: undefined });
        // The outbox opens its folder once, at start: not a cost of the puts.
        await outboxOf(storage.driver)?.status();
        (outbox ? withOutbox : without).push(await putRate(storage, c, round));
        await storage.close();
        // The round's local folders (the fs root, the spool): every round starts from the same disk.
        for (const dir of ['fs', 'spool']) rmSync(join(base, dir, label), { recursive: true, force: true });
      }
      roundRatios.push((withOutbox[round] as number) / (without[round] as number));
    }
    const [plain, spooled, ratio] = [median(without), median(withOutbox), median(roundRatios)];
    ratios.push(ratio);
    rows.push([c.name, plain, spooled, mbps(plain * c.size, 1), mbps(spooled * c.size, 1), ratio.toFixed(3)]);
  }
  console.log(`\n${backend}: put throughput with the outbox over without (anchor: the same storage without an outbox, this run; goal >= 0.97)`);
  table(rows);
  return ratios;
}

rmSync(base, { recursive: true, force: true });
mkdirSync(base, { recursive: true });
await compare('fs', (label) => {
  const root = join(base, 'fs', label);
  mkdirSync(root, { recursive: true });
  return { driver: 'fs', root };
});

const endpoint = process.env.STOWAGE_TEST_S3_ENDPOINT;
if (endpoint) {
  const { STOWAGE_TEST_S3_ACCESS_KEY: accessKeyId, STOWAGE_TEST_S3_SECRET_KEY: secretAccessKey, STOWAGE_TEST_S3_REGION: region = 'us-east-1' } = process.env;
  const bucket = `stowage-bench-outbox-${Date.now().toString(36)}`;
  const s3 = { driver: 's3' as const, endpoint, accessKeyId, secretAccessKey, region, provider: 'ceph' as const, bucket };
  await createStorage(s3).verify({ createBucket: true });
  await compare('s3', (label) => ({ ...s3, prefix: label }));
} else {
  console.log('\ns3: skipped (set STOWAGE_TEST_S3_ENDPOINT, STOWAGE_TEST_S3_ACCESS_KEY and STOWAGE_TEST_S3_SECRET_KEY to measure on RGW)');
}
rmSync(base, { recursive: true, force: true });
