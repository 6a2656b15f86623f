/**
 * Host checks against DNS rebinding, over real HTTP with the Host header a rebinding page
 * would send: without API keys only loopback names (and the operator's list) are
 * answered, on every route, before a body is read; with API keys an optional
 * allow-list; the same for the routes mounted in a user's app; and `npm start` reads
 * STOWAGE_ALLOWED_HOSTS, also for STOWAGE_ALLOW_UNAUTHENTICATED on a non-loopback HOST.
 */
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import Fastify from 'fastify';
import { Authenticator, createStorage, stowageRoutes } from '../../src/index.js';
import { runServerWithin, sendRequest, servicesClosedAfterAll } from './helpers.js';

const startService = servicesClosedAfterAll();

async function start(opts: Parameters<typeof startService>[0] = {}) {
  const service = await startService(opts);
  return { ...service, port: new URL(service.base).port };
}

const KEY = 'hosts-test-key-0123456789abcdef';
const auth = () => new Authenticator({ keys: [{ key: KEY, identity: 'ops', prefixes: [''], permissions: ['read', 'write', 'list'] }] });

/** Asserts the answer is our 403 E_HOST_NOT_ALLOWED error. */
function refused(res: { status: number; body: string }, what: string): void {
  assert.equal(res.status, 403, `${what}: ${res.body}`);
  const body = JSON.parse(res.body) as { error: { code: string; message: string; requestId: string } };
  assert.equal(body.error.code, 'E_HOST_NOT_ALLOWED', what);
  assert.match(body.error.message, /STOWAGE_ALLOWED_HOSTS/);
  assert.ok(body.error.requestId);
}

describe('http: host checks', () => {
  it('without API keys answers only loopback host names, on every route', async () => {
    const { base, port, storage } = await start();
    for (const host of ['rebind.attacker.example', `rebind.attacker.example:${port}`, `localhost.attacker.example:${port}`, `10.0.0.1:${port}`, `localhost.:${port}`, 'a b']) {
      for (const path of ['/health', '/api/objects/secret.txt', '/api/objects?prefix=', '/metrics', '/openapi.json', '/docs', '/no/such/route']) {
        refused(await sendRequest(base, { path, headers: { host } }), `${host} ${path}`);
      }
      // Refused before the body is read: nothing stored.
      refused(await sendRequest(base, { method: 'PUT', path: '/api/objects/planted.txt', headers: { host, 'content-type': 'text/plain' }, body: 'x' }), `${host} PUT`);
    }
    assert.equal(await storage.exists('planted.txt'), false);
    for (const host of ['localhost', `localhost:${port}`, `127.0.0.1:${port}`, `127.1.2.3:${port}`, `[::1]:${port}`, `LOCALHOST:${port}`]) {
      assert.equal((await sendRequest(base, { path: '/health', headers: { host } })).status, 200, host);
    }
  });

  it('takes an allow-list with or without API keys, and "any" to turn the check off', async () => {
    const open = await start({ allowedHosts: ['files.example.test', 'cdn.example.test:8443'] });
    assert.equal((await sendRequest(open.base, { path: '/health', headers: { host: 'files.example.test:9999' } })).status, 200);
    assert.equal((await sendRequest(open.base, { path: '/health', headers: { host: 'cdn.example.test:8443' } })).status, 200);
    refused(await sendRequest(open.base, { path: '/health', headers: { host: 'cdn.example.test:8080' } }), 'port not listed');
    refused(await sendRequest(open.base, { path: '/health', headers: { host: 'evil.example.test' } }), 'not listed');
    assert.equal((await sendRequest(open.base, { path: '/health', headers: { host: 'localhost' } })).status, 200);

    // With API keys every name is answered (the keys protect the data) unless a list is given.
    const keyed = await start({ auth: auth() });
    assert.equal((await sendRequest(keyed.base, { path: '/api/objects/a.txt', headers: { host: 'files.example.test' } })).status, 401);
    const listed = await start({ auth: auth(), allowedHosts: ['files.example.test'] });
    refused(await sendRequest(listed.base, { path: '/api/objects/a.txt', headers: { host: 'other.example.test', authorization: `Bearer ${KEY}` } }), 'listed with keys');
    assert.equal((await sendRequest(listed.base, { path: '/api/objects/a.txt', headers: { host: 'files.example.test', authorization: `Bearer ${KEY}` } })).status, 404);

    const any = await start({ allowedHosts: 'any' });
    assert.equal((await sendRequest(any.base, { path: '/health', headers: { host: 'whatever.example.test' } })).status, 200);
    await assert.rejects(start({ allowedHosts: ['http://files.example.test/'] }), /allowedHosts: "http:\/\/files\.example\.test\/" is not a host name/);
  });

  it('checks hosts for the routes mounted in a user app, leaving its other routes alone', async () => {
    const userApp = Fastify();
    after(() => userApp.close());
    userApp.get('/mine', async () => ({ mine: true }));
    await userApp.register(stowageRoutes, { storage: createStorage({ driver: 'memory' }) });
    const address = await userApp.listen({ host: '127.0.0.1', port: 0 });
    refused(await sendRequest(address, { path: '/api/objects/a.txt', headers: { host: 'rebind.attacker.example' } }), 'plugin');
    assert.equal((await sendRequest(address, { path: '/mine', headers: { host: 'rebind.attacker.example' } })).status, 200);
    assert.equal((await sendRequest(address, { path: '/api/objects/a.txt', headers: { host: 'localhost' } })).status, 404);
  });

  it('npm start: loopback names by default, STOWAGE_ALLOWED_HOSTS and the public URL, and a bad value named', async () => {
    const plain = await runServerWithin({ PORT: '0', STORAGE_BACKEND: 'memory' }, /Stowage listening on (http:\/\/127\.0\.0\.1:\d+)/);
    const listed = await runServerWithin({ PORT: '0', STORAGE_BACKEND: 'memory', STOWAGE_ALLOWED_HOSTS: 'files.example.test, cdn.example.test', STORAGE_PUBLIC_URL: 'https://links.example.test' }, /Stowage listening on (http:\/\/127\.0\.0\.1:\d+)/);
    try {
      const plainBase = /http:\/\/127\.0\.0\.1:\d+/.exec(plain.output)?.[0] as string;
      const listedBase = /http:\/\/127\.0\.0\.1:\d+/.exec(listed.output)?.[0] as string;
      refused(await sendRequest(plainBase, { path: '/api/objects?prefix=', headers: { host: 'rebind.attacker.example' } }), 'npm start');
      assert.equal((await sendRequest(listedBase, { path: '/health', headers: { host: 'cdn.example.test' } })).status, 200);
      assert.equal((await sendRequest(listedBase, { path: '/health', headers: { host: 'links.example.test' } })).status, 200, 'the host of STORAGE_PUBLIC_URL');
      refused(await sendRequest(listedBase, { path: '/health', headers: { host: 'rebind.attacker.example' } }), 'npm start with a list');
    } finally {
      plain.child.kill('SIGTERM');
      listed.child.kill('SIGTERM');
    }
    const bad = await runServerWithin({ PORT: '0', STORAGE_BACKEND: 'memory', STOWAGE_ALLOWED_HOSTS: 'files.example.test/path' }, /$^/);
    assert.equal(bad.code, 1);
    assert.match(bad.output, /STOWAGE_ALLOWED_HOSTS: "files\.example\.test\/path" is not a host name/);
  });

  it('npm start with STOWAGE_ALLOW_UNAUTHENTICATED on all interfaces: loopback names until the operator lists theirs', async () => {
    const listening = /Stowage listening on http:\/\/[^:]+:(\d+)/;
    const warned = await runServerWithin({ HOST: '0.0.0.0', PORT: '0', STORAGE_BACKEND: 'memory', STOWAGE_ALLOW_UNAUTHENTICATED: 'true' }, /STOWAGE_ALLOWED_HOSTS/);
    const allowed = await runServerWithin({ HOST: '0.0.0.0', PORT: '0', STORAGE_BACKEND: 'memory', STOWAGE_ALLOW_UNAUTHENTICATED: 'true', STOWAGE_ALLOWED_HOSTS: 'files.internal.test' }, listening);
    try {
      assert.match(warned.output, /only the host names localhost, 127\.0\.0\.1 and \[::1\] are answered; list the names clients use in STOWAGE_ALLOWED_HOSTS/);
      const warnedBase = `http://127.0.0.1:${listening.exec(warned.output)?.[1] ?? ''}`;
      const allowedBase = `http://127.0.0.1:${listening.exec(allowed.output)?.[1] ?? ''}`;
      refused(await sendRequest(warnedBase, { path: '/health', headers: { host: 'files.internal.test' } }), 'unlisted');
      assert.equal((await sendRequest(allowedBase, { path: '/health', headers: { host: 'files.internal.test:8080' } })).status, 200);
      refused(await sendRequest(allowedBase, { path: '/health', headers: { host: 'rebind.attacker.example' } }), 'listed');
    } finally {
      warned.child.kill('SIGTERM');
      allowed.child.kill('SIGTERM');
    }
  });
});
