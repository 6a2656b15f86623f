/**
 * The tus endpoint with the real client (tus-js-client in Node) and with raw requests,
 * the same cases on every backend: chunked uploads reporting where the object went,
 * resumption after the client stopped, parallel uploads (concatenation), checksums (460
 * with nothing appended), termination (410, by a raw DELETE and by tus-js-client),
 * deferred lengths, the template's limits (413 before a byte, 415 by the first bytes),
 * all-or-nothing visibility, method override, and the protocol's refusals.
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { after, before, it } from 'node:test';
import type { FastifyInstance } from 'fastify';
import * as tus from 'tus-js-client';
import { buildApp, type Storage } from '../../../src/index.js';
import type { UploadPolicies } from '../../../src/http/routes/uploads.js';
import { TusRecords } from '../../../src/http/tus/records.js';
import { photo } from '../../images/store-cases.js';

/** Makes a storage on the backend under test (closed by the caller). */
export type TusTarget = () => Promise<Storage>;
/** Makes a second storage on the same backend as `first`: what another service instance would open. */
export type SecondInstance = (first: Storage) => Promise<Storage>;

const POLICIES: UploadPolicies = {
  photos: { template: 'photos/{userId}/{uuid}.{ext}', maxSize: 8 * 1024 * 1024, allowedTypes: ['image/jpeg', 'image/png'] },
  files: { template: 'files/{date}/{uuid}.{ext}', maxSize: 32 * 1024 * 1024, allowedTypes: '*' },
};

/** A JPEG of about `bytes` (random bytes after a real JPEG's start, which is what the type check reads). */
async function jpegOf(bytes: number): Promise<Buffer> {
  const head = await photo(64, 64);
  return Buffer.concat([head, randomBytes(Math.max(0, bytes - head.length))]);
}

/** An HTTP stack that sends `Upload-Checksum` (sha1 of each PATCH's bytes, or a wrong one with `corrupt`). */
function checksumStack(corrupt = false): tus.HttpStack {
  const inner = new tus.DefaultHttpStack({});
  return {
    getName: () => 'checksums',
    createRequest(method, url) {
      const request = inner.createRequest(method, url);
      const send = request.send.bind(request);
      request.send = (body: unknown) => {
        if (method === 'PATCH' && Buffer.isBuffer(body)) {
          const digest = createHash('sha1').update(corrupt ? Buffer.concat([body, Buffer.from('x')]) : body).digest('base64');
          request.setHeader('Upload-Checksum', `sha1 ${digest}`);
        }
        return send(body);
      };
      return request;
    },
  };
}

/** Uploads `data` with tus-js-client; resolves the stored key and the upload's URL. */
function upload(endpoint: string, data: Buffer, options: Partial<tus.UploadOptions> = {}): Promise<{ key: string | undefined; url: string }> {
  return new Promise((resolve, reject) => {
    const u = new tus.Upload(data, {
      endpoint,
      chunkSize: 256 * 1024,
      retryDelays: [],
      metadata: { filename: 'photo.jpg', filetype: 'image/jpeg' },
      ...options,
      onSuccess: ({ lastResponse }) => resolve({ key: lastResponse.getHeader('Stowage-Object-Key'), url: u.url ?? '' }),
      onError: reject,
    });
    u.start();
  });
}

/** A raw tus request (fetch), with Tus-Resumable unless `headers` says otherwise. */
function tusFetch(url: string, method: string, headers: Record<string, string> = {}, body?: Buffer): Promise<Response> {
  return fetch(url, { method, headers: { 'Tus-Resumable': '1.0.0', ...headers }, body });
}

/** A slow PATCH at offset 0: the first half of `bytes`, then a pause until `release()`, then the rest. */
function slowPatch(url: string, bytes: Buffer): { response: Promise<Response>; release: () => void } {
  let release!: () => void;
  const paused = new Promise<void>((resolve) => (release = resolve));
  const half = Math.floor(bytes.length / 2);
  const body = new ReadableStream<Uint8Array>({
    async start(controller) {
      controller.enqueue(bytes.subarray(0, half));
      await paused;
      controller.enqueue(bytes.subarray(half));
      controller.close();
    },
  });
  const response = fetch(url, { method: 'PATCH', headers: { 'Tus-Resumable': '1.0.0', 'Content-Type': 'application/offset+octet-stream', 'Upload-Offset': '0' }, body, duplex: 'half' });
  return { response, release };
}

export function tusCases(make: TusTarget, second: SecondInstance): void {
  let app: FastifyInstance;
  let storage: Storage;
  let base: string;
  before(async () => {
    storage = await make();
    app = await buildApp({ storage, logger: false, uploadPolicies: POLICIES });
    base = await app.listen({ host: '127.0.0.1', port: 0 });
  });
  after(async () => {
    await app.close();
  });
  const endpoint = (template: string) => `${base}/api/tus/?template=${template}`;

  it('uploads in chunks with tus-js-client, and says where the object went', async () => {
    const data = await jpegOf(1024 * 1024 + 5);
    const { key, url } = await upload(endpoint('photos'), data);
    assert.match(key ?? '', /^photos\/anonymous\/[0-9a-f-]{36}\.jpg$/);
    assert.deepEqual(await storage.get(key as string), data);
    const info = await storage.stat(key as string);
    assert.deepEqual([info.contentType, info.metadata['original-name'], info.sha256], ['image/jpeg', 'photo.jpg', createHash('sha256').update(data).digest('hex')]);
    const head = await tusFetch(url, 'HEAD');
    assert.deepEqual([head.status, head.headers.get('upload-offset'), head.headers.get('stowage-object-key'), head.headers.get('tus-resumable')], [200, String(data.length), key, '1.0.0']);
  });

  it('resumes an upload the client stopped, from the offset the service reports', async () => {
    const data = await jpegOf(2 * 1024 * 1024);
    const first = await new Promise<string>((resolve, reject) => {
      const u = new tus.Upload(data, {
        endpoint: endpoint('photos'), chunkSize: 256 * 1024, retryDelays: [],
        onChunkComplete: (_chunk, sent) => {
          if (sent >= 512 * 1024) void u.abort().then(() => resolve(u.url ?? ''));
        },
        onError: reject,
      });
      u.start();
    });
    const head = await tusFetch(first, 'HEAD');
    const offset = Number(head.headers.get('upload-offset'));
    assert.ok(offset >= 512 * 1024 && offset < data.length, `stopped part way: ${offset}`);
    assert.deepEqual((await storage.list({ prefix: 'photos/' })).objects.filter((o) => o.size === data.length), [], 'nothing is visible before the last byte');
    let resumedFrom = -1;
    const { key } = await upload(endpoint('photos'), data, { uploadUrl: first, onProgress: (sent) => void (resumedFrom < 0 && (resumedFrom = sent)) });
    assert.ok(resumedFrom >= offset, `resumed at ${resumedFrom}, not from 0`);
    assert.deepEqual(await storage.get(key as string), data);
  });

  it('joins parallel uploads (concatenation) into one object', async () => {
    const data = await jpegOf(3 * 1024 * 1024 + 17);
    const { key, url } = await upload(endpoint('photos'), data, { parallelUploads: 3 });
    assert.match(key ?? '', /\.jpg$/);
    assert.deepEqual(await storage.get(key as string), data);
    const head = await tusFetch(url, 'HEAD');
    assert.match(head.headers.get('upload-concat') ?? '', /^final;\/api\/tus\/[0-9a-f]{32} \/api\/tus\/[0-9a-f]{32} \/api\/tus\/[0-9a-f]{32}$/);
    const part = (head.headers.get('upload-concat') ?? '').split(/[; ]/)[1] as string;
    assert.equal((await tusFetch(`${base}${part}`, 'HEAD')).status, 410, 'a joined part is gone');
  });

  it('checks each PATCH against Upload-Checksum: 460 and nothing appended on a mismatch', async () => {
    const data = await jpegOf(600 * 1024);
    const { key } = await upload(endpoint('photos'), data, { httpStack: checksumStack() });
    assert.deepEqual(await storage.get(key as string), data);
    const failed = await upload(endpoint('photos'), data, { httpStack: checksumStack(true) }).then(() => undefined, (err: tus.DetailedError) => err);
    assert.equal(failed?.originalResponse?.getStatus(), 460);
    const url = failed?.originalRequest?.getURL() ?? '';
    assert.equal((await tusFetch(url, 'HEAD')).headers.get('upload-offset'), '0', 'nothing of the PATCH was kept');
    const sha256 = createHash('sha256').update(data.subarray(0, 1000)).digest('base64');
    const ok = await tusFetch(url, 'PATCH', { 'Content-Type': 'application/offset+octet-stream', 'Upload-Offset': '0', 'Upload-Checksum': `sha256 ${sha256}` }, data.subarray(0, 1000));
    assert.deepEqual([ok.status, ok.headers.get('upload-offset')], [204, '1000']);
  });

  it('terminates an upload: its bytes are freed and it answers 410', async () => {
    const created = await tusFetch(endpoint('files'), 'POST', { 'Upload-Length': '100000' });
    const url = `${base}${created.headers.get('location') ?? ''}`;
    await tusFetch(url, 'PATCH', { 'Content-Type': 'application/offset+octet-stream', 'Upload-Offset': '0' }, randomBytes(50_000));
    const ours = async () => (await storage.sessions.list({ prefix: 'files/' })).filter((s) => s.size === 100_000);
    assert.equal((await ours()).length, 1);
    const deleted = await tusFetch(url, 'DELETE');
    assert.equal(deleted.status, 204);
    assert.equal((await tusFetch(url, 'HEAD')).status, 410);
    const patch = await tusFetch(url, 'PATCH', { 'Content-Type': 'application/offset+octet-stream', 'Upload-Offset': '50000' }, Buffer.from('x'));
    assert.equal(patch.status, 410);
    assert.equal(((await patch.json()) as { error: { code: string } }).error.code, 'E_UPLOAD_GONE');
    assert.deepEqual(await ours(), [], "the upload's session is gone with its bytes");

    // The same through tus-js-client: abort(true) terminates the upload it stopped.
    const data = randomBytes(1024 * 1024);
    const stopped = await new Promise<string>((resolve, reject) => {
      const u = new tus.Upload(data, {
        endpoint: endpoint('files'), chunkSize: 256 * 1024, retryDelays: [],
        onChunkComplete: (_chunk, sent) => {
          if (sent >= 512 * 1024) void u.abort(true).then(() => resolve(u.url ?? ''), reject);
        },
        onError: reject,
      });
      u.start();
    });
    assert.equal((await tusFetch(stopped, 'HEAD')).status, 410, 'terminated by the client');
    assert.deepEqual((await storage.sessions.list({ prefix: 'files/' })).filter((s) => s.size === data.length), [], 'its bytes are freed');
  });

  it('takes a deferred length, a creation with its upload, and method override', async () => {
    const data = Buffer.from('plain text that file-type does not recognise, so the claim stands\n'.repeat(100));
    const created = await tusFetch(endpoint('files'), 'POST', { 'Upload-Defer-Length': '1', 'Upload-Metadata': `filename ${Buffer.from('notes.txt').toString('base64')},filetype ${Buffer.from('text/plain').toString('base64')}`, 'Content-Type': 'application/offset+octet-stream' }, data.subarray(0, 1000));
    assert.deepEqual([created.status, created.headers.get('upload-offset')], [201, '1000']);
    const url = `${base}${created.headers.get('location') ?? ''}`;
    const head = await tusFetch(url, 'HEAD');
    assert.deepEqual([head.headers.get('upload-defer-length'), head.headers.get('cache-control')], ['1', 'no-store']);
    assert.match(head.headers.get('upload-metadata') ?? '', /^filename bm90ZXMudHh0,filetype /);
    const last = await tusFetch(url, 'POST', { 'X-HTTP-Method-Override': 'PATCH', 'Content-Type': 'application/offset+octet-stream', 'Upload-Offset': '1000', 'Upload-Length': String(data.length) }, data.subarray(1000));
    assert.equal(last.status, 204);
    const key = last.headers.get('stowage-object-key') ?? '';
    assert.match(key, /^files\/\d{4}-\d{2}-\d{2}\/[0-9a-f-]{36}\.txt$/);
    assert.equal((await storage.stat(key)).contentType, 'text/plain');
    assert.deepEqual(await storage.get(key), data);
  });

  it("enforces the template: its size before a byte and while streaming, its types by the first bytes", async () => {
    const tooLong = await tusFetch(endpoint('photos'), 'POST', { 'Upload-Length': String(8 * 1024 * 1024 + 1) });
    assert.equal(tooLong.status, 413);
    const deferred = await tusFetch(endpoint('photos'), 'POST', { 'Upload-Defer-Length': '1' });
    const url = `${base}${deferred.headers.get('location') ?? ''}`;
    const over = await tusFetch(url, 'PATCH', { 'Content-Type': 'application/offset+octet-stream', 'Upload-Offset': '0' }, await jpegOf(8 * 1024 * 1024 + 10));
    assert.equal(over.status, 413);
    const pdf = await tusFetch(endpoint('photos'), 'POST', { 'Upload-Length': '2000' });
    const pdfUrl = `${base}${pdf.headers.get('location') ?? ''}`;
    const refused = await tusFetch(pdfUrl, 'PATCH', { 'Content-Type': 'application/offset+octet-stream', 'Upload-Offset': '0' }, Buffer.concat([Buffer.from('%PDF-1.7\n'), randomBytes(1991)]));
    assert.equal(refused.status, 415);
    assert.equal((await tusFetch(pdfUrl, 'HEAD')).headers.get('upload-offset'), '0', 'nothing stored of a refused type');
    assert.equal((await tusFetch(endpoint('nope'), 'POST', { 'Upload-Length': '1' })).status, 400);
  });

  it('lets one PATCH at a time write an upload: a second one meanwhile is refused (423 or 409) and nothing interleaves', async () => {
    const created = await tusFetch(endpoint('files'), 'POST', { 'Upload-Length': String(2 * 1024 * 1024) });
    const url = `${base}${created.headers.get('location') ?? ''}`;
    const first = randomBytes(1024 * 1024);
    const { response: slow, release } = slowPatch(url, first);
    await new Promise((resolve) => setTimeout(resolve, 300));
    const rival = await tusFetch(url, 'PATCH', { 'Content-Type': 'application/offset+octet-stream', 'Upload-Offset': '0' }, randomBytes(1024 * 1024));
    assert.ok([409, 423].includes(rival.status), `the second PATCH is refused: ${rival.status}`);
    release();
    assert.equal((await slow).status, 204);
    const second = randomBytes(1024 * 1024);
    const last = await tusFetch(url, 'PATCH', { 'Content-Type': 'application/offset+octet-stream', 'Upload-Offset': String(first.length) }, second);
    const key = last.headers.get('stowage-object-key') ?? '';
    assert.deepEqual(await storage.get(key), Buffer.concat([first, second]), 'exactly the first writer\'s bytes, then the next');
  });

  it('lets another instance on the same backend resume an upload, never two instances writing it at once', async () => {
    const otherStorage = await second(storage);
    const other = await buildApp({ storage: otherStorage, logger: false, uploadPolicies: POLICIES });
    try {
      const otherBase = await other.listen({ host: '127.0.0.1', port: 0 });
      const created = await tusFetch(endpoint('files'), 'POST', { 'Upload-Length': String(2 * 1024 * 1024) });
      const path = created.headers.get('location') ?? '';
      const first = randomBytes(1024 * 1024);
      const { response: slow, release } = slowPatch(`${base}${path}`, first);
      await new Promise((resolve) => setTimeout(resolve, 300));
      const rival = await tusFetch(`${otherBase}${path}`, 'PATCH', { 'Content-Type': 'application/offset+octet-stream', 'Upload-Offset': '0' }, randomBytes(1024 * 1024));
      assert.ok([409, 423].includes(rival.status), `the other instance's PATCH is refused while the first writes: ${rival.status}`);
      release();
      assert.equal((await slow).status, 204);
      assert.equal((await tusFetch(`${otherBase}${path}`, 'HEAD')).headers.get('upload-offset'), String(first.length), 'the other instance sees the offset');
      const rest = randomBytes(1024 * 1024);
      const last = await tusFetch(`${otherBase}${path}`, 'PATCH', { 'Content-Type': 'application/offset+octet-stream', 'Upload-Offset': String(first.length) }, rest);
      assert.equal(last.status, 204);
      const key = last.headers.get('stowage-object-key') ?? '';
      assert.deepEqual(await storage.get(key), Buffer.concat([first, rest]));
      assert.equal((await tusFetch(`${base}${path}`, 'HEAD')).headers.get('stowage-object-key'), key, 'and the first instance sees it finished');
    } finally {
      await other.close();
      if (otherStorage.driver !== storage.driver) await otherStorage.close();
    }
  });

  it('removes the records of expired uploads, and nothing else', async () => {
    const records = new TusRecords(storage.driver);
    const created = await tusFetch(endpoint('files'), 'POST', { 'Upload-Length': '10' });
    const id = (created.headers.get('location') ?? '').split('/').pop() as string;
    const record = await records.load(id, 'anonymous');
    await records.save({ ...record, expiresAt: new Date(Date.now() - 1000).toISOString() });
    assert.equal((await tusFetch(`${base}/api/tus/${id}`, 'HEAD')).status, 410, 'expired');
    const live = await tusFetch(endpoint('files'), 'POST', { 'Upload-Length': '10' });
    assert.ok((await records.removeExpired(new Date())) >= 1);
    assert.equal((await tusFetch(`${base}/api/tus/${id}`, 'HEAD')).status, 404, 'its record is gone');
    assert.equal((await tusFetch(`${base}${live.headers.get('location') ?? ''}`, 'HEAD')).status, 200, 'a live upload stays');
  });

  it('answers the protocol: OPTIONS, 412 with Tus-Version, 415, 409 with nothing written, 404', async () => {
    const options = await fetch(`${base}/api/tus/`, { method: 'OPTIONS' });
    assert.equal(options.status, 204);
    assert.equal(options.headers.get('tus-extension'), 'creation,creation-with-upload,creation-defer-length,termination,expiration,checksum,concatenation');
    assert.deepEqual([options.headers.get('tus-version'), options.headers.get('tus-max-size'), options.headers.get('tus-checksum-algorithm')], ['1.0.0', String(32 * 1024 * 1024), 'sha1,sha256,sha512,md5']);
    const old = await fetch(endpoint('files'), { method: 'POST', headers: { 'Tus-Resumable': '0.2.2', 'Upload-Length': '10' } });
    assert.deepEqual([old.status, old.headers.get('tus-version')], [412, '1.0.0']);
    const created = await tusFetch(endpoint('files'), 'POST', { 'Upload-Length': '10' });
    assert.equal(created.headers.get('upload-expires') !== null, true);
    const url = `${base}${created.headers.get('location') ?? ''}`;
    assert.equal((await tusFetch(url, 'PATCH', { 'Content-Type': 'application/octet-stream', 'Upload-Offset': '0' }, Buffer.from('12345'))).status, 415);
    assert.equal((await tusFetch(url, 'PATCH', { 'Content-Type': 'application/offset+octet-stream', 'Upload-Offset': '0' }, Buffer.from('12345'))).status, 204);
    const conflict = await tusFetch(url, 'PATCH', { 'Content-Type': 'application/offset+octet-stream', 'Upload-Offset': '0' }, Buffer.from('abcde'));
    assert.equal(conflict.status, 409);
    assert.equal((await tusFetch(url, 'HEAD')).headers.get('upload-offset'), '5');
    assert.equal((await tusFetch(`${base}/api/tus/${'0'.repeat(32)}`, 'HEAD')).status, 404);
    assert.equal((await tusFetch(url, 'PATCH', { 'Content-Type': 'application/offset+octet-stream', 'Upload-Offset': '5', 'Upload-Checksum': 'crc32 AAAA' }, Buffer.from('x'))).status, 400);
  });
}
