/**
 * `stowage put` and `stowage outbox status|drain|retry|dead` as real processes, with the
 * outbox in a temp folder and Ceph RGW as the backend: a put while the backend is down
 * (an endpoint nothing listens on) says "queued"; a drain while it is still down keeps
 * the writes; a drain into a bucket that does not exist makes them dead letters; a retry
 * against the real bucket delivers them, intact.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { before, describe, it } from 'node:test';
import { createStorage } from '../../src/index.js';
import { s3Options, s3TestEnv, uniqueBucket } from '../drivers/s3/env.js';
import { tempDir } from '../layers/outbox/helpers.js';
import { freePort } from '../http/helpers.js';
import { cli } from './run.js';

const sha256 = (bytes: Buffer) => createHash('sha256').update(bytes).digest('hex');

describe('stowage outbox', () => {
  let dir: string;
  let bucket: string;
  /** The S3 variables of the test RGW for `bucketName`, at `endpoint` (default the RGW itself). */
  let s3Env: (bucketName: string, endpoint?: string) => Record<string, string>;

  before(async () => {
    const env = s3TestEnv();
    bucket = uniqueBucket('cli-outbox');
    await createStorage({ driver: 's3', ...s3Options(bucket) }).verify({ createBucket: true });
    s3Env = (bucketName, endpoint = env.endpoint) => ({
      STORAGE_BACKEND: 's3',
      STORAGE_S3_BUCKET: bucketName,
      STORAGE_S3_ENDPOINT_URL: endpoint,
      STORAGE_S3_ACCESS_KEY: env.accessKeyId,
      STORAGE_S3_SECRET_KEY: env.secretAccessKey,
      STORAGE_S3_REGION: env.region,
      STORAGE_S3_PROVIDER: 'ceph',
    });
  });

  it('queues puts while the backend is down, keeps them through a failed drain, dead-letters them on a permanent failure, and delivers them on retry', async () => {
    dir = await tempDir('cli-outbox');
    const outbox = join(dir, 'outbox');
    const down = { ...s3Env(bucket, `http://127.0.0.1:${await freePort()}`), STOWAGE_OUTBOX_DIR: outbox };
    const files = [Buffer.alloc(3000, 7), Buffer.from('second file')];
    await writeFile(join(dir, 'one.bin'), files[0] as Buffer);
    await writeFile(join(dir, 'two.txt'), files[1] as Buffer);

    const first = await cli(['put', join(dir, 'one.bin'), 'cli/one.bin', '--json'], { env: down });
    assert.equal(first.code, 0, first.stderr);
    const queued = JSON.parse(first.stdout) as { status: string; key: string; sha256: string; id: string };
    assert.equal(queued.status, 'queued');
    assert.equal(queued.key, 'cli/one.bin');
    assert.equal(queued.sha256, sha256(files[0] as Buffer));
    const second = await cli(['put', join(dir, 'two.txt'), 'cli/two.txt'], { env: down });
    assert.equal(second.code, 0, second.stderr);
    assert.match(second.stdout, /cli\/two\.txt queued .*not stored yet/);

    const status = await cli(['outbox', 'status', '--json'], { env: { STOWAGE_OUTBOX_DIR: outbox } });
    assert.equal(status.code, 0, status.stderr);
    const report = JSON.parse(status.stdout) as { pending: number; pendingBytes: number; dead: number };
    assert.deepEqual([report.pending, report.pendingBytes, report.dead], [2, 3000 + 11, 0]);
    assert.match((await cli(['outbox', 'status'], { env: { STOWAGE_OUTBOX_DIR: outbox } })).stdout, /2 pending writes .*cli\/one\.bin/s);

    const stillDown = await cli(['outbox', 'drain'], { env: down });
    assert.equal(stillDown.code, 4, 'exit 4: the backend is still unavailable');
    assert.match(stillDown.stdout, /delivered 0, 2 still pending/);

    const missingBucket = await cli(['outbox', 'drain', '--json'], { env: { ...s3Env(uniqueBucket('missing')), STOWAGE_OUTBOX_DIR: outbox } });
    assert.equal(missingBucket.code, 1, missingBucket.stderr);
    const drained = JSON.parse(missingBucket.stdout) as { dead: { code: string }[]; pending: number };
    assert.deepEqual(drained.dead.map((d) => d.code), ['E_BUCKET_NOT_FOUND', 'E_BUCKET_NOT_FOUND']);
    assert.equal(drained.pending, 0);

    const dead = await cli(['outbox', 'dead', '--json'], { env: { STOWAGE_OUTBOX_DIR: outbox } });
    const letters = JSON.parse(dead.stdout) as { entry: { key: string }; code: string }[];
    assert.deepEqual(letters.map((l) => [l.entry.key, l.code]).sort(), [['cli/one.bin', 'E_BUCKET_NOT_FOUND'], ['cli/two.txt', 'E_BUCKET_NOT_FOUND']]);
    assert.match((await cli(['outbox', 'dead'], { env: { STOWAGE_OUTBOX_DIR: outbox } })).stdout, /E_BUCKET_NOT_FOUND/);

    const retried = await cli(['outbox', 'retry'], { env: { ...s3Env(bucket), STOWAGE_OUTBOX_DIR: outbox } });
    assert.equal(retried.code, 0, retried.stderr + retried.stdout);
    assert.match(retried.stdout, /queued again: 2 dead letters/);
    assert.match(retried.stdout, /delivered 2, 0 still pending, 0 now dead/);
    const target = createStorage({ driver: 's3', ...s3Options(bucket) });
    assert.equal((await target.stat('cli/one.bin')).sha256, sha256(files[0] as Buffer));
    assert.ok((await target.get('cli/two.txt')).equals(files[1] as Buffer));
    await target.close();
    const empty = JSON.parse((await cli(['outbox', 'status', '--json'], { env: { STOWAGE_OUTBOX_DIR: outbox } })).stdout) as { pending: number; dead: number };
    assert.deepEqual([empty.pending, empty.dead], [0, 0]);
  });

  it('says what to set when no outbox is configured', async () => {
    const result = await cli(['outbox', 'status'], { env: { STOWAGE_OUTBOX_DIR: '' } });
    assert.equal(result.code, 2);
    assert.match(result.stderr, /no outbox is configured: set STOWAGE_OUTBOX_DIR/);
  });
});
