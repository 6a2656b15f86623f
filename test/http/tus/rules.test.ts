/**
 * What the tus endpoint enforces besides the protocol, on a service with API keys and
 * quotas (fs backend): an upload answers only the identity that created it (404 to
 * another, 401 without a key), the template's folder needs the write permission, a
 * declared length the quota cannot hold is 507 before a byte, a deferred one is stopped
 * at the quota while streaming with nothing stored, and a bad file name is 400.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { FastifyInstance } from 'fastify';
import { Authenticator, buildApp, createStorage, type Storage } from '../../../src/index.js';

const ALICE = 'alice-key-0123456789abcdef';
const BOB = 'bob-key-0123456789abcdef0';
const READER = 'reader-key-0123456789abcdef';

describe('tus with API keys and quotas (fs)', () => {
  let root: string;
  let storage: Storage;
  let app: FastifyInstance;
  let base: string;

  before(async () => {
    root = await mkdtemp(join(tmpdir(), 'stowage-tus-rules-'));
    storage = createStorage({ driver: 'fs', root, quotas: { rules: { 'users/*/': { maxBytes: 100_000 } }, log: () => undefined } });
    const auth = new Authenticator({
      keys: [
        { key: ALICE, identity: 'alice', prefixes: ['users/{userId}/'], permissions: ['read', 'write', 'delete', 'list'] },
        { key: BOB, identity: 'bob', prefixes: ['users/{userId}/'], permissions: ['read', 'write', 'delete', 'list'] },
        { key: READER, identity: 'reader', prefixes: ['users/'], permissions: ['read'] },
      ],
    });
    const uploadPolicies = { files: { template: 'users/{userId}/{uuid}.{ext}', maxSize: 1_000_000, allowedTypes: '*' as const } };
    app = await buildApp({ storage, auth, logger: false, uploadPolicies });
    base = await app.listen({ host: '127.0.0.1', port: 0 });
  });
  after(async () => {
    await app.close();
    await storage.close();
    await rm(root, { recursive: true, force: true });
  });

  const tus = (path: string, method: string, key: string | undefined, headers: Record<string, string> = {}, body?: Buffer) =>
    fetch(`${base}${path}`, { method, headers: { 'Tus-Resumable': '1.0.0', ...(key ? { authorization: `Bearer ${key}` } : {}), ...headers }, body });
  const patch = (path: string, key: string, offset: number, body: Buffer) => tus(path, 'PATCH', key, { 'Content-Type': 'application/offset+octet-stream', 'Upload-Offset': String(offset) }, body);
  const code = async (answer: Response) => ((await answer.json()) as { error: { code: string } }).error.code;
  const objects = async (prefix: string) => (await storage.list({ prefix })).objects.map((o) => o.key);

  it('answers an upload only to the identity that created it: 404 to another, 401 without a key', async () => {
    const created = await tus('/api/tus/', 'POST', ALICE, { 'Upload-Length': '10' });
    assert.equal(created.status, 201);
    const path = created.headers.get('location') ?? '';
    for (const method of ['HEAD', 'DELETE']) assert.equal((await tus(path, method, BOB)).status, 404, `${method} as bob`);
    const bobs = await patch(path, BOB, 0, Buffer.from('0123456789'));
    assert.equal(bobs.status, 404);
    assert.equal(await code(bobs), 'E_NOT_FOUND');
    assert.equal((await tus(path, 'HEAD', undefined)).status, 401);
    assert.equal((await tus(path, 'HEAD', ALICE)).headers.get('upload-offset'), '0', "bob's bytes were not taken");
    const done = await patch(path, ALICE, 0, Buffer.from('0123456789'));
    assert.equal(done.status, 204);
    assert.match(done.headers.get('stowage-object-key') ?? '', /^users\/alice\/[0-9a-f-]{36}\.bin$/);
  });

  it('needs the write permission where the template puts the files (403 at creation)', async () => {
    const refused = await tus('/api/tus/', 'POST', READER, { 'Upload-Length': '10' });
    assert.equal(refused.status, 403);
    assert.equal(await code(refused), 'E_ACCESS_DENIED');
    assert.equal((await tus('/api/tus/', 'POST', undefined, { 'Upload-Length': '10' })).status, 401);
  });

  it('refuses a declared length the quota has no room for with 507, before a byte', async () => {
    const before = await objects('users/bob/');
    const refused = await tus('/api/tus/', 'POST', BOB, { 'Upload-Length': '100001' });
    assert.equal(refused.status, 507);
    assert.equal(await code(refused), 'E_QUOTA_EXCEEDED');
    assert.equal(refused.headers.get('location'), null, 'no upload was created');
    const fits = await tus('/api/tus/', 'POST', BOB, { 'Upload-Length': '60000' });
    assert.equal(fits.status, 201);
    // Its reservation holds the room from its first bytes: a second 60 kB upload no longer fits.
    assert.equal((await patch(fits.headers.get('location') ?? '', BOB, 0, randomBytes(1000))).status, 204);
    const second = await tus('/api/tus/', 'POST', BOB, { 'Upload-Length': '60000' });
    assert.equal(second.status, 507);
    assert.deepEqual(await objects('users/bob/'), before, 'nothing stored');
  });

  it('stops a deferred-length upload at the quota while streaming (507), storing nothing', async () => {
    const created = await tus('/api/tus/', 'POST', ALICE, { 'Upload-Defer-Length': '1' });
    const path = created.headers.get('location') ?? '';
    const before = await objects('users/alice/');
    const over = await patch(path, ALICE, 0, randomBytes(150_000));
    assert.equal(over.status, 507);
    assert.equal(await code(over), 'E_QUOTA_EXCEEDED');
    assert.deepEqual(await objects('users/alice/'), before, 'no object appeared');
    const usage = (await (await fetch(`${base}/api/usage?prefix=users/alice/`, { headers: { authorization: `Bearer ${ALICE}` } })).json()) as { quotas: { quota: string; usedBytes: number }[] };
    assert.equal(usage.quotas.find((q) => q.quota === 'users/*/')?.usedBytes, 10, 'only the first test\'s 10 bytes count');
  });

  it('refuses a file name with a slash or a control character (400), creating nothing', async () => {
    for (const name of ['../../etc/passwd', 'a\u0007b.txt']) {
      const refused = await tus('/api/tus/', 'POST', ALICE, { 'Upload-Length': '10', 'Upload-Metadata': `filename ${Buffer.from(name).toString('base64')}` });
      assert.equal(refused.status, 400, JSON.stringify(name));
      assert.equal(await code(refused), 'E_INVALID_FILE_NAME');
      assert.equal(refused.headers.get('location'), null);
    }
  });
});
