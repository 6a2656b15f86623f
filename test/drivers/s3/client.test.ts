/**
 * Bringing your own S3 client or credentials, against the real RGW (through a loopback
 * proxy where requests or connections are counted): a caller's S3Client carries every
 * request and every presigned link, and stays usable after `storage.close()`; a
 * credential provider is called and its keys sign both; Stowage's own client is closed
 * by `close()`.
 */
import assert from 'node:assert/strict';
import { HeadObjectCommand, S3Client, type S3ClientConfig } from '@aws-sdk/client-s3';
import { after, before, beforeEach, describe, it } from 'node:test';
import { createStorage, type Storage } from '../../../src/index.js';
import { rejectsWith } from '../../conformance/harness.js';
import { s3Options, s3TestEnv, uniqueBucket } from './env.js';
import { startFaultProxy, type FaultProxy } from './fault-proxy.js';

let proxy: FaultProxy;
let bucket: string;

/** A client the way a caller builds one for RGW, aimed at the proxy so its requests are seen. */
function callersClient(extra: Partial<S3ClientConfig> = {}): S3Client {
  const env = s3TestEnv();
  return new S3Client({
    endpoint: proxy.url,
    region: env.region,
    forcePathStyle: true,
    credentials: { accessKeyId: env.accessKeyId, secretAccessKey: env.secretAccessKey },
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
    maxAttempts: 1,
    ...extra,
  });
}

/** Waits until `check` holds, for up to 5 s (a socket closes a moment after its client lets go). */
async function eventually(check: () => Promise<boolean>, what: string): Promise<void> {
  for (let i = 0; i < 100; i++) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  assert.fail(what);
}

before(async () => {
  // Idle connections stay open until a client closes them, so the test sees who does.
  proxy = await startFaultProxy(s3TestEnv().endpoint, { keepAliveTimeoutMs: 120_000 });
  bucket = uniqueBucket('client');
  const setup = createStorage({ driver: 's3', ...s3Options(bucket) });
  await setup.verify({ createBucket: true });
  await setup.close();
});
after(async () => proxy?.close());
beforeEach(() => proxy.reset());

describe('s3 driver: your own client', () => {
  it('sends every request and signs every link with it, and leaves it usable after close()', async () => {
    const client = callersClient();
    const storage = createStorage({ driver: 's3', bucket, client, provider: 'ceph', prefix: 'own' });
    try {
      await storage.put('a.txt', 'from your client', { contentType: 'text/plain' });
      assert.equal((await storage.get('a.txt')).toString(), 'from your client');
      await storage.copy('a.txt', 'b.txt');
      assert.deepEqual((await storage.list()).objects.map((o) => o.key), ['a.txt', 'b.txt']);
      assert.ok(proxy.count('PUT', '/own/a.txt') >= 1 && proxy.count('GET', '/own/a.txt') >= 1, 'the requests went through the given client');
      const { url } = await storage.signedUrl('a.txt', { method: 'GET', expiresIn: 60 });
      assert.ok(url.startsWith(`${proxy.url}/${bucket}/own/a.txt?`), `signed for the client's endpoint: ${url}`);
      assert.equal(await (await fetch(url)).text(), 'from your client');
      const { url: putUrl, headers } = await storage.signedUrl('c.txt', { method: 'PUT', contentType: 'text/plain', expiresIn: 60 });
      assert.equal((await fetch(putUrl, { method: 'PUT', headers, body: 'put by link' })).status, 200);
      assert.equal((await storage.get('c.txt')).toString(), 'put by link');
      const form = await storage.presignPost('d.txt', { maxSize: 100 });
      assert.ok(form.url.startsWith(proxy.url), form.url);
      assert.match(form.fields['X-Amz-Credential'] ?? '', new RegExp(`^${s3TestEnv().accessKeyId}/`), "the form is signed with the client's keys");
      assert.deepEqual(await storage.health().then((h) => [h.ok, h.detail.endpoint]), [true, `${proxy.url} (your S3 client)`]);
    } finally {
      await storage.close();
    }
    const head = await client.send(new HeadObjectCommand({ Bucket: bucket, Key: 'own/a.txt' }));
    assert.equal(head.ContentLength, 16, 'the client still works after storage.close()');
    const again = createStorage({ driver: 's3', bucket, client, provider: 'ceph', prefix: 'own' });
    assert.equal((await again.get('b.txt')).toString(), 'from your client', 'and serves another storage');
    await again.close();
    client.destroy();
  });

  it('signs links for publicUrl with the keys of your client', async () => {
    const publicHost = await startFaultProxy(s3TestEnv().endpoint);
    const client = callersClient();
    let storage: Storage | undefined;
    try {
      storage = createStorage({ driver: 's3', bucket, client, provider: 'ceph', publicUrl: publicHost.url });
      await storage.put('public/p.txt', 'through the public host');
      const { url } = await storage.signedUrl('public/p.txt', { method: 'GET', expiresIn: 60 });
      assert.ok(url.startsWith(`${publicHost.url}/${bucket}/public/p.txt?`), url);
      assert.equal(await (await fetch(url)).text(), 'through the public host');
      assert.equal(publicHost.count('GET', '/public/p.txt'), 1);
    } finally {
      await storage?.close();
      client.destroy();
      await publicHost.close();
    }
  });

  it('copies inside the service between storages sharing the client, and streams between different clients', async () => {
    const client = callersClient();
    const other = callersClient();
    const source = createStorage({ driver: 's3', bucket, client, provider: 'ceph', prefix: 'from' });
    const same = createStorage({ driver: 's3', bucket, client, provider: 'ceph', prefix: 'to' });
    const elsewhere = createStorage({ driver: 's3', bucket, client: other, provider: 'ceph', prefix: 'to2' });
    try {
      await source.put('x.bin', Buffer.alloc(1000, 3));
      assert.equal((await same.copyFrom(source, 'x.bin')).copiedBy, 'service');
      assert.equal((await elsewhere.copyFrom(source, 'x.bin')).copiedBy, 'stream');
      assert.deepEqual(await elsewhere.get('x.bin'), Buffer.alloc(1000, 3));
    } finally {
      for (const s of [source, same, elsewhere]) await s.close();
      client.destroy();
      other.destroy();
    }
  });

  it('warns when your client keeps the SDK checksum mode for a service that is not AWS', async () => {
    const warnings: string[] = [];
    const onWarning = (w: Error & { code?: string }) => warnings.push(w.code ?? '');
    process.on('warning', onWarning);
    const defaults = callersClient({ requestChecksumCalculation: undefined, responseChecksumValidation: undefined });
    const configured = callersClient();
    try {
      const storages = [createStorage({ driver: 's3', bucket, client: defaults, provider: 'ceph' }), createStorage({ driver: 's3', bucket, client: configured, provider: 'ceph' })];
      await eventually(async () => warnings.length > 0, 'a warning for the client with the default mode');
      await storages[1]?.health();
      assert.deepEqual(warnings, ['STOWAGE_S3_CHECKSUMS'], 'one warning, for that client only');
      for (const s of storages) await s.close();
    } finally {
      process.off('warning', onWarning);
      defaults.destroy();
      configured.destroy();
    }
  });
});

describe('s3 driver: a credential provider', () => {
  it('asks the provider for keys, and signs requests and links with them', async () => {
    const env = s3TestEnv();
    let calls = 0;
    const credentials = async () => {
      calls++;
      return { accessKeyId: env.accessKeyId, secretAccessKey: env.secretAccessKey };
    };
    const storage = createStorage({ driver: 's3', ...s3Options(bucket, { accessKeyId: undefined, secretAccessKey: undefined, credentials, endpoint: proxy.url }) });
    try {
      await storage.put('cred/a.txt', 'signed with provided keys');
      assert.ok(calls >= 1, 'the provider was called');
      const { url } = await storage.signedUrl('cred/a.txt', { method: 'GET', expiresIn: 60 });
      assert.equal(await (await fetch(url)).text(), 'signed with provided keys');
    } finally {
      await storage.close();
    }
  });

  it('fails with the access error of the keys the provider gives', async () => {
    const env = s3TestEnv();
    const credentials = async () => ({ accessKeyId: env.accessKeyId, secretAccessKey: 'not-the-secret-key-0123456789' });
    const storage = createStorage({ driver: 's3', ...s3Options(bucket, { accessKeyId: undefined, secretAccessKey: undefined, credentials }) });
    try {
      await rejectsWith(storage.put('cred/denied.txt', 'x'), 'E_ACCESS_DENIED');
    } finally {
      await storage.close();
    }
  });
});

describe("s3 driver: Stowage's own client", () => {
  it('closes its connections on close()', async () => {
    // A proxy of its own: fetch's kept-alive connections of other cases must not count.
    const own = await startFaultProxy(s3TestEnv().endpoint, { keepAliveTimeoutMs: 120_000 });
    try {
      const storage: Storage = createStorage({ driver: 's3', ...s3Options(bucket, { endpoint: own.url }) });
      await storage.put('own-client.txt', 'x');
      assert.equal(await own.openConnections(), 1, 'a kept-alive connection is open');
      await storage.close();
      await eventually(async () => (await own.openConnections()) === 0, 'close() destroys the client and its sockets');
    } finally {
      await own.close();
    }
  });
});
