/**
 * The CLI against real Ceph RGW: a migration of 10,000 objects (1 KiB to 10 MiB,
 * Unicode keys) from the local backend, killed with SIGKILL part way and resumed, ends
 * with an identical target; `--verify` catches an object corrupted behind Stowage's
 * back; `gc uploads` finds and aborts an abandoned multipart upload.
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { CreateMultipartUploadCommand, ListMultipartUploadsCommand, PutObjectCommand, UploadPartCommand } from '@aws-sdk/client-s3';
import { createStorage, createStorageFromUrl, type Storage } from '../../src/index.js';
import { rawS3Client, s3TestEnv, uniqueBucket } from '../drivers/s3/env.js';
import { cli, startCli } from './run.js';

const OBJECTS = 10_000;
let dir: string;
let source: Storage;
let sourceUrl: string;
let targetUrl: string;
let bucket: string;

/** The location URL of a bucket on the test RGW, with its keys. */
function rgwUrl(name: string): string {
  const env = s3TestEnv();
  const endpoint = new URL(env.endpoint);
  return `s3+http://${encodeURIComponent(env.accessKeyId)}:${encodeURIComponent(env.secretAccessKey)}@${endpoint.host}/${name}?provider=ceph&region=${env.region}`;
}

/** Size of object i: mostly 1-8 KiB, some 100 KiB-1 MiB, and ten of 10 MiB. */
function sizeOf(i: number): number {
  if (i % 1000 === 999) return 10 * 1024 * 1024;
  if (i % 97 === 0) return 100 * 1024 + ((i * 7919) % (900 * 1024));
  return 1024 + ((i * 131) % (7 * 1024));
}

const keyOf = (i: number) => [`photos/${i % 50}/img-${i}.jpg`, `документы/${i % 20}/файл-${i}.txt`, `mixed/é-😀-${i}`][i % 3] as string;

async function snapshot(storage: Storage): Promise<Map<string, string>> {
  const seen = new Map<string, string>();
  for await (const info of storage.listAll()) seen.set(info.key, `${info.size}:${info.sha256 ?? 'none'}`);
  return seen;
}

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'stowage-cli-s3-'));
  source = createStorage({ driver: 'fs', root: join(dir, 'src'), fsync: false });
  sourceUrl = `local:${join(dir, 'src')}`;
  bucket = uniqueBucket('migrate');
  targetUrl = rgwUrl(bucket);
  await createStorageFromUrl(targetUrl).verify({ createBucket: true });
  const big = randomBytes(10 * 1024 * 1024);
  for (let i = 0; i < OBJECTS; i += 64) {
    await Promise.all(
      Array.from({ length: Math.min(64, OBJECTS - i) }, (_, j) => {
        const n = i + j;
        const size = sizeOf(n);
        const body = size > 1024 * 1024 ? Buffer.concat([Buffer.from(String(n)), big.subarray(0, size - String(n).length)]) : randomBytes(size);
        return source.put(keyOf(n), body, { contentType: n % 3 === 0 ? 'image/jpeg' : 'text/plain', metadata: { n: String(n) } });
      }),
    );
  }
});
after(async () => rm(dir, { recursive: true, force: true }));

describe('stowage CLI on RGW', () => {
  it('migrates 10,000 objects, survives SIGKILL, and resumes to an identical target', { timeout: 900_000 }, async () => {
    const checkpoint = join(dir, 'migrate.checkpoint');
    const args = ['migrate', '--from', sourceUrl, '--to', targetUrl, '--checkpoint', checkpoint, '--concurrency', '16', '--json'];
    const first = startCli(args);
    // Kill it once a good part is recorded, as a crash would.
    for (;;) {
      await new Promise((r) => setTimeout(r, 200));
      const lines = (await readFile(checkpoint, 'utf8').catch(() => '')).split('\n').length;
      if (lines > 2500) break;
      if (first.child.exitCode !== null) assert.fail(`the first run ended before it could be killed: ${(await first.done).stderr}`);
    }
    first.child.kill('SIGKILL');
    assert.equal((await first.done).code, null, 'killed');
    const target = createStorageFromUrl(targetUrl);
    const partial = (await target.usage()).objects;
    assert.ok(partial > 2000 && partial < OBJECTS, `part of the objects were copied (${partial})`);

    const second = await cli(args);
    assert.equal(second.code, 0, second.stderr);
    const report = JSON.parse(second.stdout) as { copied: number; skipped: number; failed: unknown[] };
    assert.deepEqual(report.failed, []);
    assert.equal(report.copied + report.skipped, OBJECTS);
    assert.ok(report.skipped >= 2500, `the resumed run skipped what the first one finished (${report.skipped})`);

    const [want, got] = await Promise.all([snapshot(source), snapshot(target)]);
    assert.equal(got.size, OBJECTS);
    assert.deepEqual(got, want, 'every key, size and digest is identical');
    const sample = await target.stat(keyOf(3));
    assert.deepEqual([sample.contentType, sample.metadata.n], ['image/jpeg', '3']);
    const bigOne = await target.get(keyOf(999));
    assert.equal(createHash('sha256').update(bigOne).digest('hex'), (await source.stat(keyOf(999))).sha256);
    await target.close();
  });

  it('--verify catches an object corrupted at the target behind its back, and repairs it', { timeout: 600_000 }, async () => {
    const key = keyOf(4);
    const original = await source.stat(key);
    const raw = rawS3Client();
    // Same size and the same stored digest: only reading the bytes can tell.
    await raw.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: randomBytes(original.size), ContentType: original.contentType, Metadata: { 'stowage-sha256': original.sha256 as string, n: '4' } }));
    const plain = JSON.parse((await cli(['migrate', '--from', sourceUrl, '--to', targetUrl, '--prefix', 'документы/', '--json'])).stdout) as { copied: number };
    assert.equal(plain.copied, 0, 'without --verify size and digest look right');
    const verify = await cli(['verify', `${targetUrl}#документы/4/`, '--json']);
    assert.equal(verify.code, 1);
    assert.deepEqual((JSON.parse(verify.stdout) as { mismatched: { key: string }[] }).mismatched.map((m) => m.key), [key]);
    const repaired = await cli(['migrate', '--from', sourceUrl, '--to', targetUrl, '--prefix', 'документы/', '--verify', '--json']);
    assert.equal(repaired.code, 0, repaired.stderr);
    assert.deepEqual((JSON.parse(repaired.stdout) as { repaired: string[] }).repaired, [key]);
    const target = createStorageFromUrl(targetUrl);
    assert.ok((await target.get(key)).equals(await source.get(key)));
    await target.close();
    raw.destroy();
  });

  it('copies between two buckets of one service inside the service, and verifies the copies', { timeout: 300_000 }, async () => {
    const other = rgwUrl(uniqueBucket('migrate-copy'));
    const target = createStorageFromUrl(other);
    await target.verify({ createBucket: true });
    const res = await cli(['migrate', '--from', targetUrl, '--to', other, '--prefix', 'photos/7/', '--verify', '--json']);
    assert.equal(res.code, 0, res.stderr);
    const report = JSON.parse(res.stdout) as { copied: number; serverSide: number; verified: number; failed: unknown[] };
    assert.ok(report.copied > 50, `copied ${report.copied}`);
    assert.deepEqual([report.serverSide, report.verified, report.failed], [report.copied, report.copied, []]);
    const copied = await snapshot(target);
    const original = await snapshot(createStorageFromUrl(targetUrl));
    for (const [key, value] of copied) assert.equal(value, original.get(key), key);
    const streamed = JSON.parse((await cli(['cp', `${sourceUrl}#${keyOf(7)}`, `${other}#from-local.bin`, '--json'])).stdout) as { copiedBy: string };
    assert.equal(streamed.copiedBy, 'stream', 'a local source is streamed');
    await target.close();
  });

  it('gc uploads finds an abandoned multipart upload and aborts it with --yes', async () => {
    const raw = rawS3Client();
    const { UploadId } = await raw.send(new CreateMultipartUploadCommand({ Bucket: bucket, Key: 'abandoned/video.mp4' }));
    await raw.send(new UploadPartCommand({ Bucket: bucket, Key: 'abandoned/video.mp4', UploadId, PartNumber: 1, Body: randomBytes(5 * 1024 * 1024) }));
    const dry = await cli(['gc', 'uploads', `${targetUrl}#abandoned/`, '--older-than', '0s', '--json']);
    assert.equal(dry.code, 0, dry.stderr);
    assert.deepEqual((JSON.parse(dry.stdout) as { uploads: { key: string; uploadId: string }[] }).uploads.map((u) => [u.key, u.uploadId]), [['abandoned/video.mp4', UploadId]]);
    assert.match((await cli(['gc', 'uploads', `${targetUrl}#abandoned/`, '--older-than', '1h'])).stdout, /would abort 0/, 'too young');
    assert.match((await cli(['gc', 'uploads', `${targetUrl}#abandoned/`, '--older-than', '0s', '--yes'])).stdout, /aborted 1/);
    const left = await raw.send(new ListMultipartUploadsCommand({ Bucket: bucket }));
    assert.deepEqual(left.Uploads ?? [], []);
    raw.destroy();
  });
});

