/**
 * The service as a real process (what `npm start` runs): it starts on the fs default,
 * says where it listens and where files go, refuses bad configuration naming the
 * variable, refuses to expose an unauthenticated API, and exits cleanly on SIGTERM.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';

const SERVER = new URL('../../src/http/server.ts', import.meta.url).pathname;
const dirs: string[] = [];
after(async () => Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true }))));

/** Starts the server; resolves with its output once `until` matches it, or once it exits. */
function run(env: Record<string, string>, until: RegExp): Promise<{ output: string; code: number | null; child: ReturnType<typeof spawn> }> {
  const child = spawn(process.execPath, ['--import', 'tsx', SERVER], { env: { PATH: process.env.PATH, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  return new Promise((resolve) => {
    const check = (chunk: Buffer) => {
      output += chunk.toString();
      if (until.test(output)) resolve({ output, code: null, child });
    };
    child.stdout.on('data', check);
    child.stderr.on('data', check);
    child.once('exit', (code) => resolve({ output, code, child }));
  });
}

describe('npm start', () => {
  it('serves on the local default, and exits cleanly on SIGTERM', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'stowage-server-'));
    dirs.push(dir);
    const { output, child } = await run({ PORT: '0', STORAGE_LOCAL_PATH: join(dir, 'uploads') }, /Stowage listening on (http:\/\/127\.0\.0\.1:\d+)/);
    const address = /Stowage listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(output)?.[1];
    assert.ok(address, output);
    assert.match(output, new RegExp(`backend fs, files in ${join(dir, 'uploads')}`));
    assert.equal((await fetch(`${address}/api/storage/health`)).status, 200);
    const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
    child.kill('SIGTERM');
    assert.equal(await exited, 0);
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
  });
});
