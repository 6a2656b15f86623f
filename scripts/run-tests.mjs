#!/usr/bin/env node
// Runs every test/**/*.test.ts file with node:test through tsx. Node 20's --test does
// not expand globs, so the files are found here.
//
// The S3 tests need a real S3 server. Unless STOWAGE_TEST_S3_ENDPOINT (with
// STOWAGE_TEST_S3_ACCESS_KEY and STOWAGE_TEST_S3_SECRET_KEY) points at one, this starts
// a Ceph RGW with scripts/s3-test-server.sh for the run and stops it afterwards. If it
// cannot start, the S3 tests still run and fail with the reason (never a silent skip).
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

function find(dir) {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return find(path);
    return entry.name.endsWith('.test.ts') ? [path] : [];
  });
}

const only = process.argv.slice(2);
const files = only.length > 0 ? only : find('test').sort();
if (files.length === 0) {
  console.error('no test files found under test/');
  process.exit(1);
}

const env = { ...process.env };
let serverDir;
const needsS3 = files.some((f) => f.includes('s3'));
if (needsS3 && !env.STOWAGE_TEST_S3_ENDPOINT) {
  serverDir = mkdtempSync(join(tmpdir(), 'stowage-rgw-'));
  console.log(`starting a Ceph RGW for the S3 tests (scripts/s3-test-server.sh, ${serverDir})`);
  const started = spawnSync('bash', ['scripts/s3-test-server.sh', 'start', serverDir], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
  if (started.status === 0) {
    for (const line of started.stdout.split('\n')) {
      const at = line.indexOf('=');
      if (line.startsWith('STOWAGE_TEST_S3_') && at > 0) env[line.slice(0, at)] = line.slice(at + 1);
    }
  } else {
    env.STOWAGE_TEST_S3_ERROR = `scripts/s3-test-server.sh could not start Ceph RGW (exit ${started.status}); see its output above, or set STOWAGE_TEST_S3_ENDPOINT, STOWAGE_TEST_S3_ACCESS_KEY and STOWAGE_TEST_S3_SECRET_KEY to use your own S3 endpoint`;
  }
}

const result = spawnSync(process.execPath, ['--import', 'tsx', '--test', '--test-reporter=spec', ...files], { stdio: 'inherit', env });
if (serverDir) spawnSync('bash', ['scripts/s3-test-server.sh', 'stop', serverDir], { stdio: 'inherit' });
process.exit(result.status ?? 1);
