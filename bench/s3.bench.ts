/**
 * S3 driver throughput against Ceph RGW (started here unless STOWAGE_TEST_S3_ENDPOINT is
 * set), everything in one run:
 *
 * - 512 MiB upload: Stowage (at its default concurrency 4, and at awscli's 10) vs `aws s3 cp`, `@aws-sdk/lib-storage` Upload at its defaults,
 *   and minio-js putObject. Goal: >= 1.2x awscli and >= 1.0x the better JS client.
 * - 512 MiB download: Stowage getStream vs a raw SDK GetObject stream. Goal: >= 1.0x.
 * - Peak RSS growth of Stowage's upload. Goal: <= partSize x concurrency + 64 MB.
 * - 2,000 objects of 4 KiB at concurrency 16: PUT and GET ops/s vs the raw SDK. Goal:
 *   overhead <= 5%.
 *
 * Each figure is the median of BENCH_ROUNDS rounds (default 3), the clients taking turns.
 * BENCH_SIZE_MB and BENCH_OBJECTS change the sizes.
 */
import { execFileSync } from 'node:child_process';
import { createReadStream, rmSync } from 'node:fs';
import { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { DeleteObjectCommand, GetObjectCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import * as Minio from 'minio';
import { createStorage, type S3Driver } from '../src/index.js';
import { benchS3Server, mbps, median, peakRssGrowth, pool, scratchWithRandomFile, table, timed } from './lib.js';

const sizeMb = Number(process.env.BENCH_SIZE_MB ?? 512);
const rounds = Number(process.env.BENCH_ROUNDS ?? 3);
const objects = Number(process.env.BENCH_OBJECTS ?? 2000);
const bytes = sizeMb * 1024 * 1024;

const server = benchS3Server();
const { endpoint, accessKeyId, secretAccessKey } = server;
const bucket = `stowage-bench-${Date.now().toString(36)}`;

const { dir, file } = scratchWithRandomFile('s3', bytes);

const storage = createStorage({ driver: 's3', bucket, endpoint, accessKeyId, secretAccessKey, provider: 'ceph' });
const storage10 = createStorage({ driver: 's3', bucket, endpoint, accessKeyId, secretAccessKey, provider: 'ceph', concurrency: 10 });
const { partSize, concurrency } = (storage.driver as S3Driver).options;
// The raw SDK client as a user would make it for this service: path style, and the
// checksum mode RGW needs (with SDK defaults streaming uploads fail there).
const raw = new S3Client({ endpoint, region: 'us-east-1', forcePathStyle: true, credentials: { accessKeyId, secretAccessKey }, requestChecksumCalculation: 'WHEN_REQUIRED', responseChecksumValidation: 'WHEN_REQUIRED' });
const endpointUrl = new URL(endpoint);
const minio = new Minio.Client({ endPoint: endpointUrl.hostname, port: Number(endpointUrl.port), useSSL: false, accessKey: accessKeyId, secretKey: secretAccessKey, region: 'us-east-1' });
const awsEnv = { ...process.env, AWS_ACCESS_KEY_ID: accessKeyId, AWS_SECRET_ACCESS_KEY: secretAccessKey, AWS_REQUEST_CHECKSUM_CALCULATION: 'when_required', AWS_RESPONSE_CHECKSUM_VALIDATION: 'when_required', AWS_CONFIG_FILE: '/dev/null', AWS_SHARED_CREDENTIALS_FILE: '/dev/null' };
const aws = (args: string[]) => execFileSync('aws', [...args, '--endpoint-url', endpoint, '--region', 'us-east-1'], { env: awsEnv, stdio: 'ignore' });
const discard = () => new Writable({ write: (_chunk, _enc, done) => done() });
const remove = (key: string) => raw.send(new DeleteObjectCommand({ Bucket: bucket, Key: key }));

try {
  await storage.verify({ createBucket: true });
  const up: Record<string, number[]> = { stowage: [], stowage10: [], awscli: [], libStorage: [], minio: [] };
  const down: Record<string, number[]> = { stowage: [], rawSdk: [] };
  const rss: number[] = [];
  // A fresh RGW creates its data pool on the first large write: warm it up untimed.
  await storage.put('warm-up.bin', createReadStream(file, { end: 64 * 1024 * 1024 - 1 }));
  await remove('warm-up.bin');
  const uploads: [string, () => Promise<unknown>][] = [
    ['stowage', async () => rss.push(await peakRssGrowth('self', async () => up.stowage?.push(await timed(() => storage.put('big/stowage.bin', createReadStream(file, { highWaterMark: 1024 * 1024 }))))))],
    // awscli runs 10 transfers at once by default; the same for Stowage, for a like-for-like row.
    ['stowage10', async () => up.stowage10?.push(await timed(() => storage10.put('big/stowage10.bin', createReadStream(file, { highWaterMark: 1024 * 1024 }))))],
    ['awscli', async () => up.awscli?.push(await timed(async () => aws(['s3', 'cp', file, `s3://${bucket}/big/awscli.bin`])))],
    ['libStorage', async () => up.libStorage?.push(await timed(() => new Upload({ client: raw, params: { Bucket: bucket, Key: 'big/lib-storage.bin', Body: createReadStream(file) } }).done()))],
    ['minio', async () => up.minio?.push(await timed(() => minio.putObject(bucket, 'big/minio.bin', createReadStream(file), bytes)))],
  ];
  for (let round = 0; round < rounds; round++) {
    // Take turns going first, so no client always meets a warmer or colder server.
    for (let i = 0; i < uploads.length; i++) await (uploads[(i + round) % uploads.length] as [string, () => Promise<unknown>])[1]();
    down.stowage?.push(await timed(async () => pipeline((await storage.getStream('big/stowage.bin')).stream, discard())));
    down.rawSdk?.push(await timed(async () => pipeline((await raw.send(new GetObjectCommand({ Bucket: bucket, Key: 'big/stowage.bin' }))).Body as NodeJS.ReadableStream, discard())));
    await Promise.all(['big/stowage.bin', 'big/stowage10.bin', 'big/awscli.bin', 'big/lib-storage.bin', 'big/minio.bin'].map(remove));
  }
  const m = (xs: number[] | undefined) => median(xs ?? []);
  const bestJs = Math.min(m(up.libStorage), m(up.minio));
  console.log(`\nS3 (Ceph RGW on loopback), ${sizeMb} MiB object, median of ${rounds}, Node ${process.version}`);
  table([
    ['upload', 'seconds', 'MB/s', 'Stowage speed-up'],
    ['stowage put (stream)', m(up.stowage), mbps(bytes, m(up.stowage)), 1],
    ['stowage put, concurrency 10', m(up.stowage10), mbps(bytes, m(up.stowage10)), m(up.stowage10) / m(up.stowage)],
    ['aws s3 cp', m(up.awscli), mbps(bytes, m(up.awscli)), m(up.awscli) / m(up.stowage)],
    ['lib-storage Upload (defaults)', m(up.libStorage), mbps(bytes, m(up.libStorage)), m(up.libStorage) / m(up.stowage)],
    ['minio-js putObject', m(up.minio), mbps(bytes, m(up.minio)), m(up.minio) / m(up.stowage)],
  ]);
  console.log(`upload vs awscli: ${(m(up.awscli) / m(up.stowage)).toFixed(2)}x at Stowage's default concurrency 4, ${(m(up.awscli) / m(up.stowage10)).toFixed(2)}x at awscli's 10 (goal >= 1.2); vs the better JS client: ${(bestJs / m(up.stowage)).toFixed(2)}x (goal >= 1.0)`);
  console.log(`peak RSS growth of the upload: ${(Math.max(...rss) / 1e6).toFixed(1)} MB (goal <= partSize x concurrency + 64 = ${((partSize * concurrency) / 1e6 + 64).toFixed(0)} MB)`);
  table([
    ['download', 'seconds', 'MB/s', 'ratio vs raw SDK'],
    ['raw SDK GetObject stream', m(down.rawSdk), mbps(bytes, m(down.rawSdk)), 1],
    ['stowage getStream', m(down.stowage), mbps(bytes, m(down.stowage)), m(down.rawSdk) / m(down.stowage)],
  ]);

  const small = Buffer.alloc(4096, 7);
  const keys = Array.from({ length: objects }, (_, i) => `small/${i}`);
  const ops: Record<string, number[]> = { rawPut: [], stowagePut: [], rawGet: [], stowageGet: [] };
  for (let round = 0; round < rounds; round++) {
    ops.rawPut?.push(objects / (await timed(() => pool(keys, 16, (k) => raw.send(new PutObjectCommand({ Bucket: bucket, Key: `raw/${k}`, Body: small }))))));
    ops.stowagePut?.push(objects / (await timed(() => pool(keys, 16, (k) => storage.put(k, small)))));
    ops.rawGet?.push(objects / (await timed(() => pool(keys, 16, async (k) => (await raw.send(new GetObjectCommand({ Bucket: bucket, Key: `raw/${k}` }))).Body?.transformToByteArray()))));
    ops.stowageGet?.push(objects / (await timed(() => pool(keys, 16, (k) => storage.get(k)))));
  }
  console.log(`\n${objects} objects of 4 KiB, concurrency 16, median of ${rounds}`);
  table([
    ['op', 'raw SDK ops/s', 'stowage ops/s', 'ratio', 'overhead'],
    ['PUT', m(ops.rawPut), m(ops.stowagePut), m(ops.stowagePut) / m(ops.rawPut), `${((1 - m(ops.stowagePut) / m(ops.rawPut)) * 100).toFixed(1)}%`],
    ['GET', m(ops.rawGet), m(ops.stowageGet), m(ops.stowageGet) / m(ops.rawGet), `${((1 - m(ops.stowageGet) / m(ops.rawGet)) * 100).toFixed(1)}%`],
  ]);
} finally {
  await storage.close();
  await storage10.close();
  raw.destroy();
  rmSync(dir, { recursive: true, force: true });
  server.stop();
}
