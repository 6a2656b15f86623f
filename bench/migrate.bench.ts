/**
 * `stowage migrate` vs `aws s3 sync` (Debian's awscli) and `rclone copy` (Debian's
 * rclone): the same tree of BENCH_OBJECTS x 4 KiB plus 20 x 10 MiB files, from local
 * disk to Ceph RGW (started for the run), each into a fresh bucket, at the same
 * concurrency (16: awscli's max_concurrent_requests, rclone's --transfers and
 * --checkers, stowage's --concurrency). Goal: >= 1.5x aws s3 sync, >= 1.0x rclone.
 *
 * Stowage does more per object than either tool: it reads the file's SHA-256 while
 * copying and stores it with the object. The tree is written by the fs driver, so the
 * source objects carry their digests, as after any app's uploads.
 */
import { execFile, execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { randomBytes } from 'node:crypto';
import { createStorage, createStorageFromUrl } from '../src/index.js';
import { benchS3Server, table, timed } from './lib.js';

const smallCount = Number(process.env.BENCH_OBJECTS ?? 10_000);
const concurrency = 16;
const run = promisify(execFile);

for (const [bin, pkg] of [['aws', 'awscli'], ['rclone', 'rclone']]) {
  if (spawnSync('sh', ['-c', `command -v ${bin}`]).status !== 0) throw new Error(`${bin} is missing: run  sudo apt-get install -y ${pkg}`);
}
const server = benchS3Server();
const { endpoint, accessKeyId, secretAccessKey } = server;
const host = new URL(endpoint).host;

// The CLI as users run it (`npx stowage`): compiled, not through tsx, whose start-up would be timed too.
execFileSync('npm', ['run', '--silent', 'build'], { stdio: 'inherit' });

const dir = mkdtempSync(join(tmpdir(), 'stowage-bench-migrate-'));
const root = join(dir, 'tree');
const tree = createStorage({ driver: 'fs', root, fsync: false });
for (let i = 0; i < smallCount; i += 256) {
  await Promise.all(Array.from({ length: Math.min(256, smallCount - i) }, (_, j) => tree.put(`small/${(i + j) % 100}/f-${i + j}.bin`, randomBytes(4096))));
}
for (let i = 0; i < 20; i++) await tree.put(`large/f-${i}.bin`, randomBytes(10 * 1024 * 1024));
const bytes = smallCount * 4096 + 20 * 10 * 1024 * 1024;

const bucketUrl = (bucket: string) => `s3+http://${accessKeyId}:${secretAccessKey}@${host}/${bucket}?provider=ceph`;
const fresh = async (label: string) => {
  const bucket = `stowage-bench-${label}-${Date.now().toString(36)}`;
  await createStorageFromUrl(bucketUrl(bucket)).verify({ createBucket: true });
  return bucket;
};
const awsConfig = join(dir, 'aws-config');
writeFileSync(awsConfig, `[default]\ns3 =\n  max_concurrent_requests = ${concurrency}\n`);
const awsEnv = { ...process.env, AWS_ACCESS_KEY_ID: accessKeyId, AWS_SECRET_ACCESS_KEY: secretAccessKey, AWS_CONFIG_FILE: awsConfig, AWS_SHARED_CREDENTIALS_FILE: '/dev/null', AWS_REQUEST_CHECKSUM_CALCULATION: 'when_required', AWS_RESPONSE_CHECKSUM_VALIDATION: 'when_required' };
// AWS_CA_BUNDLE (set on some machines) makes rclone fail on a plain-HTTP endpoint.
const { AWS_CA_BUNDLE: _caBundle, ...baseEnv } = process.env;
const rcloneEnv = { ...baseEnv, RCLONE_CONFIG_RGW_TYPE: 's3', RCLONE_CONFIG_RGW_PROVIDER: 'Ceph', RCLONE_CONFIG_RGW_ENDPOINT: endpoint, RCLONE_CONFIG_RGW_ACCESS_KEY_ID: accessKeyId, RCLONE_CONFIG_RGW_SECRET_ACCESS_KEY: secretAccessKey, RCLONE_CONFIG: '/dev/null' };

try {
  const results: [string, number][] = [];
  const stowageBucket = await fresh('stowage');
  results.push(['stowage migrate', await timed(() => run(process.execPath, ['dist/cli/main.js', 'migrate', '--from', `local:${root}`, '--to', bucketUrl(stowageBucket), '--concurrency', String(concurrency)], { maxBuffer: 1 << 24 }))]);
  const awsBucket = await fresh('aws');
  results.push(['aws s3 sync', await timed(() => run('aws', ['s3', 'sync', '--only-show-errors', '--exclude', '.stowage/*', root, `s3://${awsBucket}/`, '--endpoint-url', endpoint, '--region', 'us-east-1'], { env: awsEnv, maxBuffer: 1 << 24 }))]);
  const rcloneBucket = await fresh('rclone');
  results.push(['rclone copy', await timed(() => run('rclone', ['copy', '--exclude', '.stowage/**', '--transfers', String(concurrency), '--checkers', String(concurrency), root, `rgw:${rcloneBucket}`], { env: rcloneEnv, maxBuffer: 1 << 24 }))]);
  const stowage = results[0]?.[1] as number;
  console.log(`\n${smallCount} x 4 KiB + 20 x 10 MiB, local disk -> Ceph RGW, concurrency ${concurrency}, Node ${process.version}`);
  table([
    ['tool', 'seconds', 'objects/s', 'ratio (tool time / stowage time; > 1: stowage faster)'],
    ...results.map(([name, seconds]): (string | number)[] => [name, seconds.toFixed(1), Math.round((smallCount + 20) / seconds), (seconds / stowage).toFixed(2)]),
  ]);
  console.log(`goals: >= 1.5 vs aws s3 sync, >= 1.0 vs rclone (${(bytes / 1e6).toFixed(0)} MB in all)`);
} finally {
  rmSync(dir, { recursive: true, force: true });
  server.stop();
}
