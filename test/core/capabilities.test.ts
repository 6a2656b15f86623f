/**
 * Storage decides by capabilities, never by which methods a driver has (every driver has
 * them all): a native operation is called only when its flag says so, and otherwise
 * Storage does it its own way without touching the driver's method. The HTTP service
 * registers its signed-link routes by the same flags. A layer that changes what is
 * supported says so by overriding `capabilities`, and Storage follows it.
 */
import assert from 'node:assert/strict';
import { writeFile, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import {
  buildApp,
  createStorage,
  DriverLayer,
  isStorageError,
  MemoryDriver,
  type Driver,
  type AsyncDriverOperation,
  type DriverCapabilities,
  type DriverOperation,
  type DriverPresignPostOptions,
  type DriverSignedUrlOptions,
  type IncompleteUpload,
  type ObjectInfo,
  type PresignedPost,
  type SignedUrl,
} from '../../src/index.js';
import { rejectsWith } from '../conformance/harness.js';

const SIGNING = { baseUrl: 'http://127.0.0.1:8080', signingSecret: 'capabilities-test-secret-0123456789' };
const dir = await mkdtemp(join(tmpdir(), 'stowage-capabilities-'));
after(() => rm(dir, { recursive: true, force: true }));

/** A layer over memory that records which operations reach it, and claims what `claims` says. */
class Claims extends DriverLayer {
  readonly calls: DriverOperation[] = [];
  readonly #claims: Partial<DriverCapabilities>;

  constructor(claims: Partial<DriverCapabilities> = {}) {
    super(new MemoryDriver());
    this.#claims = claims;
  }

  override get capabilities(): DriverCapabilities {
    return { ...this.inner.capabilities, ...this.#claims };
  }

  protected override around<T>(operation: AsyncDriverOperation, run: () => Promise<T>): Promise<T> {
    this.calls.push(operation);
    return run();
  }

  // What a backend that does these natively would answer (memory itself cannot).
  override async move(from: string, to: string): Promise<ObjectInfo> {
    this.calls.push('move');
    const info = await this.inner.copy(from, to);
    await this.inner.delete(from);
    return info;
  }

  override async putFile(key: string): Promise<ObjectInfo> {
    this.calls.push('putFile');
    return { key, size: 0, etag: 'native', contentType: 'text/plain', lastModified: new Date(), metadata: {} };
  }

  override async signedUrl(key: string, opts: DriverSignedUrlOptions): Promise<SignedUrl> {
    this.calls.push('signedUrl');
    return { url: `https://backend.example/${key}`, method: opts.method, headers: {}, expiresAt: new Date(Date.now() + opts.expiresIn * 1000) };
  }

  override async presignPost(key: string, opts: DriverPresignPostOptions): Promise<PresignedPost> {
    this.calls.push('presignPost');
    return { url: `https://backend.example/`, fields: { key }, expiresAt: new Date(Date.now() + opts.expiresIn * 1000) };
  }

  override async incompleteUploads(): Promise<IncompleteUpload[]> {
    this.calls.push('incompleteUploads');
    return [{ key: 'b', uploadId: '2', initiated: new Date(2000) }, { key: 'a', uploadId: '1', initiated: new Date(1000) }];
  }
}

describe('storage: decided by capabilities', () => {
  it('uses native operations only where the capabilities say so', async () => {
    const file = join(dir, 'upload.txt');
    await writeFile(file, 'from a file');
    const plain = new Claims();
    const storage = createStorage({ driver: plain, ...SIGNING });
    await storage.put('a.txt', 'a');
    await storage.move('a.txt', 'b.txt');
    assert.equal((await storage.putFile('f.txt', file)).etag !== 'native', true);
    assert.match((await storage.signedUrl('b.txt', { method: 'GET' })).url, /^http:\/\/127\.0\.0\.1:8080\/files\/b\.txt\?/);
    assert.match((await storage.presignPost('up.txt')).url, /^http:\/\/127\.0\.0\.1:8080\/files\/up\.txt\?/);
    assert.deepEqual(await storage.incompleteUploads(), []);
    await rejectsWith(storage.abortUpload({ key: 'a', uploadId: '1', initiated: new Date() }), 'E_UNSUPPORTED', 'multipart');
    const native: DriverOperation[] = ['move', 'putFile', 'signedUrl', 'presignPost', 'incompleteUploads', 'abortUpload'];
    assert.deepEqual(plain.calls.filter((c) => native.includes(c)), [], 'Storage did these itself');
    // After a move, the stored image variants of both keys are removed (internal files).
    assert.deepEqual(plain.calls, ['put', 'copy', 'delete', 'deleteInternal', 'put']);
  });

  it('calls the driver for what it does natively', async () => {
    const file = join(dir, 'native.txt');
    await writeFile(file, 'x');
    const claims = new Claims({ nativeMove: true, nativePutFile: true, nativeSignedUrls: true, nativePresignPost: true, multipartUploads: true });
    const storage = createStorage({ driver: claims });
    await storage.put('a.txt', 'a');
    await storage.move('a.txt', 'b.txt');
    assert.equal((await storage.putFile('f.txt', file)).etag, 'native');
    assert.equal((await storage.signedUrl('b.txt', { method: 'GET' })).url, 'https://backend.example/b.txt');
    assert.equal((await storage.presignPost('up.txt')).url, 'https://backend.example/');
    assert.deepEqual((await storage.incompleteUploads()).map((u) => u.key), ['a', 'b'], 'oldest first');
    assert.deepEqual(claims.calls.filter((c) => c !== 'put'), ['move', 'deleteInternal', 'putFile', 'signedUrl', 'presignPost', 'incompleteUploads']);
  });

  it('reports signedUrls: native, or HMAC links when the storage can sign, else none', () => {
    assert.equal(createStorage({ driver: 'memory' }).capabilities.signedUrls, false);
    assert.equal(createStorage({ driver: 'memory', ...SIGNING }).capabilities.signedUrls, true);
    assert.equal(createStorage({ driver: new Claims({ nativeSignedUrls: true }) }).capabilities.signedUrls, true);
    const caps = createStorage({ driver: 'memory' }).capabilities;
    assert.deepEqual(
      { ...caps },
      { conditionalWrites: true, rangeReads: true, keyIsPrefix: true, nativeSignedUrls: false, nativePresignPost: false, nativeMove: false, nativePutFile: false, multipartUploads: false, sessions: true, internalFiles: true, signedUrls: false },
    );
  });
});

describe('storage: the contract is checked once', () => {
  it('refuses a driver that lacks operations of the contract, naming them', () => {
    const memory = new MemoryDriver();
    // A driver written for the older contract, where these were optional.
    const old = { name: 'old', capabilities: memory.capabilities, put: memory.put.bind(memory), stat: memory.stat.bind(memory), read: memory.read.bind(memory), delete: memory.delete.bind(memory), deleteMany: memory.deleteMany.bind(memory), copy: memory.copy.bind(memory), list: memory.list.bind(memory), check: memory.check.bind(memory) };
    assert.throws(
      () => createStorage({ driver: old as unknown as Driver }),
      (err: unknown) => isStorageError(err, 'E_CONFIG_INVALID') && /"old" lacks putFile, copyFrom, move, signedUrl, presignPost, verify, incompleteUploads, abortUpload, createSession, getSession, writeSession, completeSession, abortSession, readSession, listSessions, putInternal, readInternal, deleteInternal, listInternal, location, close: .*BaseDriver/.test(err.message),
    );
    assert.throws(
      () => createStorage({ driver: 'fallback', primary: old as unknown as Driver, secondary: createStorage({ driver: 'memory' }) }),
      (err: unknown) => isStorageError(err, 'E_CONFIG_INVALID') && /^the fallback storage's primary "old" lacks putFile/.test(err.message),
    );
    assert.throws(
      () => createStorage({ driver: 'fallback', primary: createStorage({ driver: 'memory' }), secondary: undefined as unknown as Driver }),
      (err: unknown) => isStorageError(err, 'E_CONFIG_INVALID') && /secondary must be a Storage or a Driver/.test(err.message),
    );
  });
});

describe('http: signed-link routes by capabilities', () => {
  /** The status of an unsigned request to the signed-link route, on a service whose driver claims `claims`. */
  async function filesStatus(claims: Partial<DriverCapabilities>, method = 'GET', images?: false): Promise<number> {
    const app = await buildApp({ storage: createStorage({ driver: new Claims(claims), ...SIGNING, images }), signingSecret: SIGNING.signingSecret, logger: false });
    try {
      const base = await app.listen({ host: '127.0.0.1', port: 0 });
      return (await fetch(`${base}/files/a.txt`, { method, body: method === 'PUT' ? 'x' : undefined })).status;
    } finally {
      await app.close();
    }
  }

  it('serves /files/ links where Storage issues them, and only variant links where the backend presigns', async () => {
    assert.equal(await filesStatus({}), 403, 'registered: an unsigned link is refused');
    assert.equal(await filesStatus({}, 'PUT'), 403);
    const native = { nativeSignedUrls: true, nativePresignPost: true };
    assert.equal(await filesStatus(native), 403, "registered for image variants' links, which only the service renders");
    assert.equal(await filesStatus(native, 'PUT'), 404, 'no upload links: the backend signs its own');
    assert.equal(await filesStatus(native, 'GET', false), 404, 'not registered without image variants');
  });
});
