/**
 * What the CLI prints when things go wrong or come in ones: `--json` errors as one JSON
 * object on stderr, S3 without credentials as a configuration error (no retries, no SDK
 * notice on the terminal), and counts with the right noun.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { createStorage, migrate } from '../../src/index.js';
import { cli } from './run.js';

let dir: string;
let loc: string;

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'stowage-cli-output-'));
  loc = `local:${join(dir, 'store')}`;
  const s = createStorage({ driver: 'fs', root: join(dir, 'store') });
  await s.put('one/a.txt', 'a');
  await s.put('two/a.txt', 'a');
  await s.put('two/b.txt', 'bb');
});
after(async () => rm(dir, { recursive: true, force: true }));

/** The single JSON object a failed `--json` command wrote to stderr. */
function jsonError(stderr: string): { code: string; message: string } {
  const lines = stderr.trim().split('\n');
  assert.equal(lines.length, 1, `one line on stderr, got: ${stderr}`);
  return JSON.parse(lines[0] as string) as { code: string; message: string };
}

describe('stowage CLI output', () => {
  it('reports errors with --json as one JSON object on stderr, with code and message', async () => {
    const missing = await cli(['-s', loc, 'stat', 'one/missing.txt', '--json']);
    assert.equal(missing.code, 3);
    assert.equal(missing.stdout, '');
    const notFound = jsonError(missing.stderr);
    assert.equal(notFound.code, 'E_NOT_FOUND');
    assert.match(notFound.message, /one\/missing\.txt/);

    const badKey = jsonError((await cli(['-s', loc, 'stat', 'a/../b', '--json'])).stderr);
    assert.equal(badKey.code, 'E_INVALID_KEY');
    const badLocation = await cli(['--json', '-s', 'ftp://x', 'ls']);
    assert.equal(badLocation.code, 2);
    assert.equal(jsonError(badLocation.stderr).code, 'E_CONFIG_INVALID');
    // The command line itself, refused by the parser or by a command.
    const unknown = await cli(['--json', 'frobnicate']);
    assert.equal(unknown.code, 2);
    assert.deepEqual(jsonError(unknown.stderr), { code: 'E_USAGE', message: "unknown command 'frobnicate'" });
    const usage = jsonError((await cli(['-s', loc, '--json', 'rm', 'one/a.txt'])).stderr);
    assert.equal(usage.code, 'E_USAGE');
    assert.match(usage.message, /refusing without --yes/);

    // Without --json the same failure is one line of prose.
    assert.match((await cli(['-s', loc, 'stat', 'one/missing.txt'])).stderr, /^stowage: no object at "one\/missing\.txt"\n$/);
  });

  it('treats S3 without credentials as a configuration error: the settings to set, no retries, no SDK notice', async () => {
    const home = await mkdtemp(join(tmpdir(), 'stowage-no-aws-'));
    try {
      const env = {
        HOME: home,
        AWS_ACCESS_KEY_ID: '',
        AWS_SECRET_ACCESS_KEY: '',
        AWS_SESSION_TOKEN: '',
        AWS_PROFILE: '',
        AWS_SHARED_CREDENTIALS_FILE: join(home, 'none'),
        AWS_CONFIG_FILE: join(home, 'none'),
        STORAGE_S3_ACCESS_KEY: '',
        STORAGE_S3_SECRET_KEY: '',
        // Let Node print warnings, as on a user's terminal.
        NODE_NO_WARNINGS: '0',
      };
      const result = await cli(['-s', 's3://some-bucket', 'ls'], { env });
      assert.equal(result.code, 2, result.stderr);
      assert.match(result.stderr, /^stowage: no S3 credentials: set STORAGE_S3_ACCESS_KEY and STORAGE_S3_SECRET_KEY/);
      assert.match(result.stderr, /AWS_ACCESS_KEY_ID.*~\/\.aws\/credentials.*instance metadata/);
      assert.doesNotMatch(result.stderr, /attempts/, 'a missing key is not retried');
      assert.doesNotMatch(result.stderr, /Warning|node >=22/, "the SDK's Node version notice stays off the terminal");
      assert.equal(result.stderr.trim().split('\n').length, 1);
      const json = await cli(['-s', 's3://some-bucket', 'ls', '--json'], { env });
      assert.equal(jsonError(json.stderr).code, 'E_CONFIG_INVALID');
    } finally {
      await rm(home, { recursive: true, force: true });
    }
  });

  it('says "1 object" and "2 objects"', async () => {
    assert.match((await cli(['-s', loc, 'du', 'one/'])).stdout, /^1 object, 1 B \(1 byte\) under one\/\n$/);
    assert.match((await cli(['-s', loc, 'du', 'two/'])).stdout, /^2 objects, 3 B \(3 bytes\) under two\/\n$/);
    assert.match((await cli(['-s', loc, 'rm', '-r', 'one/'])).stderr, /delete 1 object under "one\/"/);
    assert.equal((await cli(['-s', loc, 'rm', '-r', 'one/', '--yes'])).stdout, 'deleted 1 object\n');
    assert.equal((await cli(['-s', loc, 'rm', '-r', 'two/', '--yes'])).stdout, 'deleted 2 objects\n');
  });

  it('shows a progress bar of the bytes of get, put and cp on a terminal, and nothing without one', async () => {
    const file = join(dir, 'big.bin');
    await writeFile(file, randomBytes(3 * 1024 * 1024));
    // `script` gives the CLI a terminal, as a user's shell would.
    const cliMain = join(process.cwd(), 'src/cli/main.ts');
    const onTerminal = (args: string) => execFileSync('script', ['-qfec', `${process.execPath} --import tsx ${cliMain} -s ${loc} ${args}`, '/dev/null'], { encoding: 'utf8', env: { ...process.env, NODE_NO_WARNINGS: '1' } });
    assert.match(onTerminal(`put ${file} bars/big.bin`), /put bars\/big\.bin \[=+\] 3\.0 MiB of 3\.0 MiB/);
    assert.match(onTerminal(`get bars/big.bin ${join(dir, 'back.bin')}`), /get big\.bin \[=+\] 3\.0 MiB of 3\.0 MiB/);
    assert.match(onTerminal(`cp bars/big.bin memory:#copy.bin`), /cp bars\/big\.bin \[[=-]+\] 3\.0 MiB/);
    const quiet = await cli(['-s', loc, 'get', 'bars/big.bin', join(dir, 'again.bin')]);
    assert.equal(quiet.stderr, '', 'no bar without a terminal');
  });

  it('reports migration bytes within an object, not only when it is done', async () => {
    const from = createStorage({ driver: 'memory' });
    await from.put('video.mp4', randomBytes(4 * 1024 * 1024));
    const seen: { objects: number; bytes: number }[] = [];
    await migrate(from, createStorage({ driver: 'memory' }), { onProgress: (p) => seen.push({ objects: p.objects, bytes: p.bytes }) });
    assert.ok(seen.some((p) => p.objects === 0 && p.bytes > 0 && p.bytes < 4 * 1024 * 1024), 'bytes move before the object is done');
    assert.deepEqual(seen.at(-1), { objects: 1, bytes: 4 * 1024 * 1024 });
  });

  it('refuses to delete even a single key without a terminal unless --yes is given', async () => {
    const s = createStorage({ driver: 'fs', root: join(dir, 'store') });
    await s.put('single.txt', 'keep me');
    const refused = await cli(['-s', loc, 'rm', 'single.txt']);
    assert.equal(refused.code, 2);
    assert.match(refused.stderr, /delete single\.txt from .*: refusing without --yes when not on a terminal/);
    assert.equal((await s.get('single.txt')).toString(), 'keep me');
    assert.equal((await cli(['-s', loc, 'rm', 'single.txt', '--yes'])).code, 0);
    assert.equal(await s.exists('single.txt'), false);
  });
});
