// Starts the S3 server the tests and benchmarks use, unless STOWAGE_TEST_S3_ENDPOINT
// (with STOWAGE_TEST_S3_ACCESS_KEY and STOWAGE_TEST_S3_SECRET_KEY) names one already.
import { spawnSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const script = new URL('./s3-test-server.sh', import.meta.url).pathname;

/**
 * Returns { env, stop, error }: env holds the STOWAGE_TEST_S3_* variables to use; stop()
 * shuts down a server this call started; error explains a failure to start one.
 */
export function ensureS3Server(baseEnv = process.env) {
  if (baseEnv.STOWAGE_TEST_S3_ENDPOINT) return { env: {}, stop: () => {} };
  const dir = mkdtempSync(join(tmpdir(), 'stowage-rgw-'));
  console.error(`starting a Ceph RGW (scripts/s3-test-server.sh, ${dir})`);
  const started = spawnSync('bash', [script, 'start', dir], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
  const stop = () => spawnSync('bash', [script, 'stop', dir], { stdio: 'inherit' });
  if (started.status !== 0) {
    stop();
    return {
      env: {},
      stop: () => {},
      error: `scripts/s3-test-server.sh could not start Ceph RGW (exit ${started.status}); see its output above, or set STOWAGE_TEST_S3_ENDPOINT, STOWAGE_TEST_S3_ACCESS_KEY and STOWAGE_TEST_S3_SECRET_KEY to use your own S3 endpoint`,
    };
  }
  const env = {};
  for (const line of started.stdout.split('\n')) {
    const at = line.indexOf('=');
    if (line.startsWith('STOWAGE_TEST_S3_') && at > 0) env[line.slice(0, at)] = line.slice(at + 1);
  }
  return { env, stop };
}
