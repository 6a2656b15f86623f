/**
 * Interop with a real, independent S3 client (awscli, Debian's package) on the same
 * RGW: what Stowage writes, awscli reads back byte-identical with its content type and
 * metadata; what awscli writes, Stowage reads, lists and stats correctly.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { createStorage, type Storage } from '../../../src/index.js';
import { s3Options, s3TestEnv, uniqueBucket } from './env.js';

let storage: Storage;
let bucket: string;
const dir = mkdtempSync(join(tmpdir(), 'stowage-interop-'));

/** Runs awscli against the test endpoint (checksums as the service needs them). */
function aws(args: string[]): string {
  const env = s3TestEnv();
  return execFileSync('aws', [...args, '--endpoint-url', env.endpoint, '--region', env.region], {
    encoding: 'utf8',
    env: {
      ...process.env,
      AWS_ACCESS_KEY_ID: env.accessKeyId,
      AWS_SECRET_ACCESS_KEY: env.secretAccessKey,
      AWS_REQUEST_CHECKSUM_CALCULATION: 'when_required',
      AWS_RESPONSE_CHECKSUM_VALIDATION: 'when_required',
      AWS_CONFIG_FILE: '/dev/null',
      AWS_SHARED_CREDENTIALS_FILE: '/dev/null',
    },
  });
}

before(async () => {
  bucket = uniqueBucket('interop');
  storage = createStorage({ driver: 's3', ...s3Options(bucket, { multipartThreshold: 5 * 1024 * 1024, partSize: 5 * 1024 * 1024 }) });
  await storage.verify({ createBucket: true });
});
after(() => rmSync(dir, { recursive: true, force: true }));

describe('interop with awscli', () => {
  for (const [label, size] of [['a small object', 70_000], ['a multipart object', 12 * 1024 * 1024]] as const) {
    it(`awscli reads ${label} written by Stowage byte-identical, with type and metadata`, async () => {
      const data = randomBytes(size);
      const key = `from-stowage/${label.replace(/ /g, '-')}/фото 1.webp`;
      await storage.put(key, data, { contentType: 'image/webp', metadata: { owner: 'user-42', note: 'ünïcode' } });
      const out = join(dir, 'download.bin');
      aws(['s3', 'cp', `s3://${bucket}/${key}`, out]);
      assert.deepEqual(readFileSync(out), data);
      const head = JSON.parse(aws(['s3api', 'head-object', '--bucket', bucket, '--key', key])) as { ContentType: string; ContentLength: number; Metadata: Record<string, string> };
      assert.equal(head.ContentType, 'image/webp');
      assert.equal(head.ContentLength, size);
      assert.equal(head.Metadata.owner, 'user-42');
      assert.equal(head.Metadata['stowage-sha256'], createHash('sha256').update(data).digest('hex'));
    });
  }

  it('Stowage reads, lists and stats objects written by awscli', async () => {
    const data = randomBytes(9 * 1024 * 1024); // above awscli's 8 MiB multipart threshold
    const file = join(dir, 'upload.mp3');
    writeFileSync(file, data);
    aws(['s3', 'cp', file, `s3://${bucket}/from-aws/track 1.mp3`, '--content-type', 'audio/mpeg', '--metadata', 'artist=someone']);
    aws(['s3', 'cp', file, `s3://${bucket}/from-aws/sub/copy.mp3`]);
    const info = await storage.stat('from-aws/track 1.mp3');
    assert.equal(info.size, data.length);
    assert.equal(info.contentType, 'audio/mpeg');
    assert.deepEqual(info.metadata, { artist: 'someone' });
    assert.equal(info.sha256, undefined, 'no digest is claimed for objects Stowage did not write');
    assert.deepEqual(await storage.get('from-aws/track 1.mp3'), data);
    assert.deepEqual((await storage.get('from-aws/track 1.mp3', { range: { suffix: 10 } })), data.subarray(data.length - 10));
    const page = await storage.list({ prefix: 'from-aws/', delimiter: '/' });
    assert.deepEqual(page.objects.map((o) => o.key), ['from-aws/track 1.mp3']);
    assert.deepEqual(page.prefixes, ['from-aws/sub/']);
    assert.equal((await storage.usage({ prefix: 'from-aws/' })).bytes, 2 * data.length);
  });
});
