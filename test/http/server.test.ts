/**
 * The service as a real process (what `npm start` runs): it starts on the fs default,
 * says where it listens and where files go, refuses bad configuration naming the
 * variable, refuses to expose an unauthenticated API, and exits cleanly on SIGTERM.
 */
import assert from 'node:assert/strict';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { LISTENING, runServer as run, slowUpload } from './helpers.js';

const dirs: string[] = [];
after(async () => Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true }))));

describe('npm start', () => {
  it('serves on the local default, and exits cleanly on SIGTERM', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'stowage-server-'));
    dirs.push(dir);
    const { output, child } = await run({ PORT: '0', STORAGE_LOCAL_PATH: join(dir, 'uploads') }, LISTENING);
    const address = LISTENING.exec(output)?.[1];
    assert.ok(address, output);
    assert.match(output, new RegExp(`backend fs, files in ${join(dir, 'uploads')}`));
    assert.equal((await fetch(`${address}/api/storage/health`)).status, 200);
    const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
    child.kill('SIGTERM');
    assert.equal(await exited, 0);
  });

  for (const [label, deadlineMs, expectStored] of [['finishes uploads in flight within the deadline', 5000, true], ['aborts uploads still running at the deadline, storing nothing', 300, false]] as const) {
    it(`on SIGTERM, ${label}`, async () => {
      const dir = await mkdtemp(join(tmpdir(), 'stowage-shutdown-'));
      dirs.push(dir);
      const root = join(dir, 'uploads');
      const { output, child } = await run({ PORT: '0', STORAGE_LOCAL_PATH: root, STOWAGE_SHUTDOWN_TIMEOUT_MS: String(deadlineMs) }, LISTENING);
      const address = LISTENING.exec(output)?.[1] as string;
      const upload = slowUpload(address, 'in-flight.bin', 20 * 64 * 1024, 50); // about 1 s
      await new Promise((r) => setTimeout(r, 200));
      const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
      child.kill('SIGTERM');
      const status = await upload;
      const answered = Date.now();
      assert.equal(await exited, 0);
      // The upload's keep-alive connection is closed once it goes idle, not at the deadline.
      assert.ok(Date.now() - answered < 2000, `exited ${Date.now() - answered} ms after the last answer`);
      const files = await readdir(root);
      if (expectStored) {
        assert.equal(status, 201);
        assert.ok(files.includes('in-flight.bin'));
      } else {
        assert.notEqual(status, 201);
        assert.ok(!files.includes('in-flight.bin'), 'no partial object');
        const tmp = join(root, '.stowage', 'tmp');
        for (const sub of await readdir(tmp)) assert.deepEqual(await readdir(join(tmp, sub)), [], 'no temp file');
      }
    });
  }

  it('requires API keys when they are configured', async () => {
    const auth = JSON.stringify({ keys: [{ key: 'server-test-key-0123456789', identity: 'u1', prefixes: ['users/{userId}/'], permissions: ['read', 'write'] }] });
    const dir = await mkdtemp(join(tmpdir(), 'stowage-auth-'));
    dirs.push(dir);
    const { output, child } = await run({ PORT: '0', STORAGE_LOCAL_PATH: dir, STOWAGE_AUTH: auth }, LISTENING);
    const address = LISTENING.exec(output)?.[1] as string;
    assert.match(output, /API keys required/);
    assert.equal((await fetch(`${address}/api/objects/users/u1/a.txt`, { method: 'PUT', body: 'x' })).status, 401);
    const ok = await fetch(`${address}/api/objects/users/u1/a.txt`, { method: 'PUT', body: 'x', headers: { authorization: 'Bearer server-test-key-0123456789' } });
    assert.equal(ok.status, 201);
    child.kill('SIGTERM');
    const bad = await run({ PORT: '0', STOWAGE_AUTH: '{"keys": [{"key": "short"}]}' }, /$^/);
    assert.equal(bad.code, 1);
    assert.match(bad.output, /invalid STOWAGE_AUTH/);
  });

  it('refuses to listen beyond loopback without authentication', async () => {
    const { output, code } = await run({ HOST: '0.0.0.0', PORT: '0' }, /$^/);
    assert.equal(code, 1);
    assert.match(output, /HOST=0\.0\.0\.0 would expose the API without authentication/);
  });

  it('names the variable of a bad configuration', async () => {
    const port = await run({ PORT: 'eighty' }, /$^/);
    assert.equal(port.code, 1);
    assert.match(port.output, /PORT must be a whole number/);
    const backend = await run({ PORT: '0', STORAGE_BACKEND: 'ftp' }, /$^/);
    assert.equal(backend.code, 1);
    assert.match(backend.output, /STORAGE_BACKEND must be one of: local, memory, s3/);
    const log = await run({ PORT: '0', STOWAGE_ACCESS_LOG: 'sometimes' }, /$^/);
    assert.equal(log.code, 1);
    assert.match(log.output, /STOWAGE_ACCESS_LOG must be true\/false, 1\/0, yes\/no or on\/off \(got "sometimes"\)/);
  });

  for (const [setting, logged] of [[undefined, true], ['false', false]] as const) {
    it(`${logged ? 'logs' : 'does not log'} each request as JSON with its id when STOWAGE_ACCESS_LOG is ${setting ?? 'unset'}`, async () => {
      const dir = await mkdtemp(join(tmpdir(), 'stowage-log-'));
      dirs.push(dir);
      const env: Record<string, string> = { PORT: '0', STORAGE_LOCAL_PATH: dir, ...(setting ? { STOWAGE_ACCESS_LOG: setting } : {}) };
      const { child, output } = await run(env, LISTENING);
      const address = LISTENING.exec(output)?.[1] as string;
      let lines = '';
      child.stdout?.on('data', (chunk: Buffer) => (lines += chunk.toString()));
      const res = await fetch(`${address}/api/objects/missing.txt`, { headers: { 'x-request-id': 'trace-me-42' } });
      assert.equal(res.status, 404);
      await new Promise((r) => setTimeout(r, 300));
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGTERM');
      await exited;
      const requestLines = lines.split('\n').filter((l) => l.includes('"reqId":"trace-me-42"')).map((l) => JSON.parse(l) as { msg: string });
      // The 404 is a storage error, logged with the request id either way; the request lines
      // only with the access log.
      assert.ok(requestLines.some((l) => l.msg === 'storage error'), lines);
      assert.equal(requestLines.some((l) => l.msg === 'incoming request'), logged, lines);
      assert.equal(requestLines.some((l) => l.msg === 'request completed'), logged, lines);
    });
  }
});
