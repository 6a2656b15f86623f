/**
 * Local driver throughput: a 1 GiB file stored into Stowage (putFile, and put of a
 * stream) and streamed back out, against
 * `cp` of the same file on the same disk in the same run, with peak RSS growth.
 * Goal: ratio >= 0.9 and RSS growth <= 64 MB.
 *
 * Stowage fsyncs every object before renaming it into place (crash safety) and `cp`
 * does not, so fsync-on rows are compared with `cp` followed by `sync FILE`, and
 * fsync-off rows with plain `cp`. Anchor and Stowage runs alternate, and each figure
 * is the median of BENCH_ROUNDS rounds (default 3), because disk writeback on a shared
 * machine makes single runs swing by 3x. BENCH_SIZE_MB changes the size (e.g. 5120).
 */
import { execFileSync } from 'node:child_process';
import { createReadStream, createWriteStream, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { createStorage } from '../src/index.js';
import { mbps, median, peakRssGrowth, scratchWithRandomFile, table, timed } from './lib.js';

const sizeMb = Number(process.env.BENCH_SIZE_MB ?? 1024);
const rounds = Number(process.env.BENCH_ROUNDS ?? 3);
const bytes = sizeMb * 1024 * 1024;
const { dir, file: source } = scratchWithRandomFile('fs', bytes);
execFileSync('sync');

const rows: (string | number)[][] = [['case', 'median s', 'MB/s', 'ratio vs anchor', 'peak RSS growth MB']];
try {
  for (const fsync of [true, false]) {
    const root = join(dir, `root-${fsync}`);
    const storage = createStorage({ driver: 'fs', root, fsync });
    const out = join(dir, 'out.bin');
    const samples = { anchor: [] as number[], put: [] as number[], stream: [] as number[], get: [] as number[], putRss: [] as number[], streamRss: [] as number[], getRss: [] as number[] };
    for (let round = 0; round < rounds; round++) {
      samples.anchor.push(
        await timed(async () => {
          execFileSync('cp', [source, out]);
          if (fsync) execFileSync('sync', [out]);
        }),
      );
      rmSync(out);
      execFileSync('sync');
      samples.putRss.push(await peakRssGrowth('self', async () => samples.put.push(await timed(() => storage.putFile('bench/big.bin', source)))));
      execFileSync('sync');
      const streamed = () => storage.put('bench/big.bin', createReadStream(source, { highWaterMark: 1024 * 1024 }));
      samples.streamRss.push(await peakRssGrowth('self', async () => samples.stream.push(await timed(streamed))));
      execFileSync('sync');
      samples.getRss.push(
        await peakRssGrowth('self', async () =>
          samples.get.push(
            await timed(async () => {
              const { stream } = await storage.getStream('bench/big.bin');
              await pipeline(stream, createWriteStream(out, { highWaterMark: 1024 * 1024 }));
              if (fsync) execFileSync('sync', [out]);
            }),
          ),
        ),
      );
      if (statSync(out).size !== bytes) throw new Error('read back a different size');
      rmSync(out);
      execFileSync('sync');
    }
    const anchor = median(samples.anchor);
    const put = median(samples.put);
    const stream = median(samples.stream);
    const get = median(samples.get);
    rows.push([`anchor: cp${fsync ? ' + sync FILE' : ''}`, anchor, mbps(bytes, anchor), 1, '-']);
    rows.push([`stowage putFile (fsync ${fsync ? 'on' : 'off'})`, put, mbps(bytes, put), anchor / put, Math.max(...samples.putRss) / 1e6]);
    rows.push([`stowage put(stream) (fsync ${fsync ? 'on' : 'off'})`, stream, mbps(bytes, stream), anchor / stream, Math.max(...samples.streamRss) / 1e6]);
    rows.push([`stowage get to a file${fsync ? ' + sync FILE' : ''}`, get, mbps(bytes, get), anchor / get, Math.max(...samples.getRss) / 1e6]);
    rmSync(root, { recursive: true, force: true });
  }
  console.log(`\nlocal driver, ${sizeMb} MiB object, median of ${rounds}, Node ${process.version}`);
  table(rows);
} finally {
  rmSync(dir, { recursive: true, force: true });
}
