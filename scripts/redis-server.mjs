// Starts the Redis the quota tests use (scripts/redis-test-server.sh), unless
// STOWAGE_TEST_REDIS_URL names one already; and private servers that a test can stop
// and start again (the "Redis is down" tests), without touching the shared one.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const script = new URL('./redis-test-server.sh', import.meta.url).pathname;

function run(args) {
  return spawnSync('bash', [script, ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
}

function urlOf(stdout) {
  const line = stdout.split('\n').find((l) => l.startsWith('STOWAGE_TEST_REDIS_URL='));
  return line?.slice('STOWAGE_TEST_REDIS_URL='.length);
}

/**
 * Returns { env, stop, error }: env holds STOWAGE_TEST_REDIS_URL to use; stop() shuts down
 * a server this call started; error explains a failure to start one.
 */
export function ensureRedisServer(baseEnv = process.env) {
  if (baseEnv.STOWAGE_TEST_REDIS_URL) return { env: {}, stop: () => {} };
  const dir = mkdtempSync(join(tmpdir(), 'stowage-redis-'));
  console.error(`starting redis-server (scripts/redis-test-server.sh, ${dir})`);
  const started = run(['start', dir]);
  const stop = () => run(['stop', dir]);
  const url = started.status === 0 ? urlOf(started.stdout) : undefined;
  if (!url) {
    stop();
    return {
      env: {},
      stop: () => {},
      error: `scripts/redis-test-server.sh could not start redis-server (exit ${started.status}); see its output above, or set STOWAGE_TEST_REDIS_URL to use your own Redis`,
    };
  }
  return { env: { STOWAGE_TEST_REDIS_URL: url }, stop };
}

/**
 * Starts a private redis-server for one test and returns { url, port, stop(), start(),
 * pause(), resume() }: stop() shuts it down (its data goes), start() brings it back on the
 * same port; pause() freezes the process (SIGSTOP: connections stay open, nothing
 * answers), resume() thaws it. Throws with the reason when it cannot start.
 */
export function privateRedisServer() {
  const dir = mkdtempSync(join(tmpdir(), 'stowage-redis-own-'));
  const first = run(['start', dir]);
  const url = first.status === 0 ? urlOf(first.stdout) : undefined;
  if (!url) {
    run(['stop', dir]);
    throw new Error(`scripts/redis-test-server.sh could not start a private redis-server (exit ${first.status}); see its output above`);
  }
  const port = new URL(url).port;
  const signal = (name) => process.kill(Number(readFileSync(join(dir, 'redis.pid'), 'utf8')), name);
  return {
    url,
    port: Number(port),
    stop: () => {
      run(['stop', dir]);
    },
    start: () => {
      const again = run(['start', dir, port]);
      if (again.status !== 0) throw new Error(`redis-server did not start again on port ${port} (exit ${again.status})`);
    },
    pause: () => signal('SIGSTOP'),
    resume: () => signal('SIGCONT'),
  };
}
