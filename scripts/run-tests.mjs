#!/usr/bin/env node
// Runs every test/**/*.test.ts file with node:test through tsx. Node 20's --test does
// not expand globs, so the files are found here.
//
// The S3 tests need a real S3 server. Unless STOWAGE_TEST_S3_ENDPOINT (with
// STOWAGE_TEST_S3_ACCESS_KEY and STOWAGE_TEST_S3_SECRET_KEY) points at one, this starts
// a Ceph RGW with scripts/s3-test-server.sh for the run and stops it afterwards. If it
// cannot start, the S3 tests still run and fail with the reason (never a silent skip).
// The quota, lifecycle and Redis tests likewise need a real Redis: unless
// STOWAGE_TEST_REDIS_URL names one, scripts/redis-test-server.sh starts one for the run.
import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { ensureRedisServer } from './redis-server.mjs';
import { ensureS3Server } from './s3-server.mjs';

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
// The chaos tests (test/chaos/) and the outbox's CLI test run against RGW too.
const needsS3 = files.some((f) => /(^|\/)(s3\.test\.ts|s3\/|chaos\/)/.test(f) || /(^|\/)cli\/outbox\.test\.ts$/.test(f));
const server = needsS3 ? ensureS3Server(env) : { env: {}, stop: () => {} };
Object.assign(env, server.env);
if (server.error) env.STOWAGE_TEST_S3_ERROR = server.error;
const needsRedis = files.some((f) => /quota|lifecycle|redis/.test(f));
const redis = needsRedis ? ensureRedisServer(env) : { env: {}, stop: () => {} };
Object.assign(env, redis.env);
if (redis.error) env.STOWAGE_TEST_REDIS_ERROR = redis.error;

const result = spawnSync(process.execPath, ['--import', 'tsx', '--test', '--test-reporter=spec', ...files], { stdio: 'inherit', env });
server.stop();
redis.stop();
process.exit(result.status ?? 1);
