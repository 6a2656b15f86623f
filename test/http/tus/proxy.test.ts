/**
 * tus behind a reverse proxy that limits bodies and refuses PATCH: a real nginx (Debian's
 * package, installed when missing) with `client_max_body_size 1m` and only GET, HEAD, POST
 * and OPTIONS allowed, in front of the service. tus-js-client, with chunks under the limit
 * and `overridePatchMethod` (POST with X-HTTP-Method-Override: PATCH), uploads 3 MiB
 * through it and learns the stored key; the same requests without those settings are
 * refused by the proxy, so the test shows the proxy's rules were in force.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { FastifyInstance } from 'fastify';
import * as tus from 'tus-js-client';
import { buildApp, createStorage, type Storage } from '../../../src/index.js';
import { ensureTool } from '../../../scripts/ensure-tool.mjs';
import { freePort } from '../helpers.js';

/** nginx in front of `upstream`: bodies up to 1 MiB, PATCH and DELETE denied, requests streamed. */
function nginxConfig(dir: string, port: number, upstream: string): string {
  const temp = (name: string) => `${name}_temp_path ${join(dir, name)};`;
  return `${process.getuid?.() === 0 ? 'user root;' : ''}
worker_processes 1; daemon off; pid ${join(dir, 'nginx.pid')}; error_log ${join(dir, 'error.log')};
events {}
http {
  access_log off;
  ${['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi'].map(temp).join(' ')}
  server {
    listen 127.0.0.1:${port};
    client_max_body_size 1m;
    location /api/tus/ {
      limit_except GET POST OPTIONS { deny all; }
      proxy_pass ${upstream};
      proxy_http_version 1.1;
      proxy_request_buffering off;
      proxy_buffering off;
      proxy_set_header Host $http_host;
    }
  }
}`;
}

describe('tus behind nginx that limits bodies to 1 MiB and refuses PATCH', () => {
  let dir: string;
  let nginx: ChildProcess;
  let app: FastifyInstance;
  let storage: Storage;
  let proxy: string;

  before(async () => {
    ensureTool('nginx', 'nginx-light');
    dir = await mkdtemp(join(tmpdir(), 'stowage-tus-proxy-'));
    storage = createStorage({ driver: 'fs', root: join(dir, 'root') });
    app = await buildApp({ storage, logger: false, uploadPolicies: { files: { template: 'files/{uuid}.{ext}', maxSize: 64 * 1024 * 1024, allowedTypes: '*' } } });
    const upstream = await app.listen({ host: '127.0.0.1', port: 0 });
    const port = await freePort();
    proxy = `http://127.0.0.1:${port}`;
    await writeFile(join(dir, 'nginx.conf'), nginxConfig(dir, port, upstream));
    nginx = spawn('nginx', ['-c', join(dir, 'nginx.conf')], { stdio: ['ignore', 'ignore', 'inherit'] });
    const deadline = Date.now() + 10_000;
    for (;;) {
      const ready = await fetch(`${proxy}/api/tus/`, { method: 'OPTIONS' }).then((r) => r.status === 204, () => false);
      if (ready) break;
      if (Date.now() > deadline) throw new Error('nginx did not start');
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  });
  after(async () => {
    nginx?.kill('SIGTERM');
    await app?.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('uploads 3 MiB with chunks under the limit and PATCH tunnelled through POST', async () => {
    const data = randomBytes(3 * 1024 * 1024 + 11);
    const key = await new Promise<string | undefined>((resolve, reject) => {
      const upload = new tus.Upload(data, {
        endpoint: `${proxy}/api/tus/`, chunkSize: 512 * 1024, overridePatchMethod: true, retryDelays: [],
        metadata: { filename: 'through-the-proxy.bin' },
        onSuccess: ({ lastResponse }) => resolve(lastResponse.getHeader('Stowage-Object-Key')),
        onError: reject,
      });
      upload.start();
    });
    assert.match(key ?? '', /^files\/[0-9a-f-]{36}\.bin$/);
    assert.deepEqual(await storage.get(key as string), data);
    assert.equal((await storage.stat(key as string)).metadata['original-name'], 'through-the-proxy.bin');
  });

  it('is refused by the proxy without those settings: PATCH is 403, a body over 1 MiB is 413', async () => {
    const created = await fetch(`${proxy}/api/tus/`, { method: 'POST', headers: { 'Tus-Resumable': '1.0.0', 'Upload-Length': String(2 * 1024 * 1024) } });
    assert.equal(created.status, 201);
    const url = `${proxy}${created.headers.get('location') ?? ''}`;
    const headers = { 'Tus-Resumable': '1.0.0', 'Content-Type': 'application/offset+octet-stream', 'Upload-Offset': '0' };
    assert.equal((await fetch(url, { method: 'PATCH', headers, body: randomBytes(1000) })).status, 403);
    assert.equal((await fetch(url, { method: 'POST', headers: { ...headers, 'X-HTTP-Method-Override': 'PATCH' }, body: randomBytes(2 * 1024 * 1024) })).status, 413);
    const head = await fetch(url, { method: 'HEAD', headers: { 'Tus-Resumable': '1.0.0' } });
    assert.equal(head.headers.get('upload-offset'), '0', 'nothing reached the upload');
  });
});
