/**
 * Upload sessions on the real RGW past what the conformance suite's small writes reach:
 * writes of odd sizes across 5 MiB parts (whole parts uploaded, the remainder in one
 * tail object renamed per write), a session written by a process killed with SIGKILL
 * and finished by another (the SHA-256 covering both), a state whose parts or tail the
 * bucket lost refused, a completion cut short before the state's removal, session
 * uploads left out of the clean-up of abandoned uploads, and a refused condition on a
 * multipart completion, and partial sessions sealed and joined (also after a crash mid-seal).
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, afterEach, before, beforeEach, describe, it } from 'node:test';
import { AbortMultipartUploadCommand, DeleteObjectCommand, GetObjectCommand, ListMultipartUploadsCommand, ListObjectsV2Command, ListPartsCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { createStorage, type S3DriverOptions, type Storage } from '../../../src/index.js';
import { rejectsWith } from '../../conformance/harness.js';
import { rawS3Client, removeBucket, s3Options, s3TestEnv, uniqueBucket } from './env.js';
import { startFaultProxy, type FaultProxy } from './fault-proxy.js';
import { PartSchedule } from '../../../src/drivers/s3/part-sizes.js';

const MiB = 1024 * 1024;
const raw = rawS3Client();
let bucket: string;
let dir: string;
let proxy: FaultProxy;

function storage(extra: Partial<S3DriverOptions> = {}): Storage {
  return createStorage({ driver: 's3', ...s3Options(bucket, { partSize: 5 * MiB, ...extra }) });
}

const digest = (data: Buffer) => createHash('sha256').update(data).digest('hex');

/** The objects under a session's tail folder. */
async function tails(id: string): Promise<string[]> {
  const out = await raw.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: `.stowage/sessions/${id}/` }));
  return (out.Contents ?? []).map((o) => (o.Key ?? '').slice(`.stowage/sessions/${id}/`.length));
}

async function uploadOf(key: string): Promise<string | undefined> {
  const out = await raw.send(new ListMultipartUploadsCommand({ Bucket: bucket, Prefix: key }));
  return out.Uploads?.find((u) => u.Key === key)?.UploadId;
}

async function partsOf(key: string): Promise<number> {
  const uploadId = await uploadOf(key);
  if (!uploadId) return 0;
  return (await raw.send(new ListPartsCommand({ Bucket: bucket, Key: key, UploadId: uploadId }))).Parts?.length ?? 0;
}

async function stateOf(id: string): Promise<Record<string, unknown>> {
  const out = await raw.send(new GetObjectCommand({ Bucket: bucket, Key: `.stowage/sessions/${id}.json` }));
  return JSON.parse((await out.Body?.transformToString('utf8')) ?? '') as Record<string, unknown>;
}

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'stowage-s3-sessions-'));
  proxy = await startFaultProxy(s3TestEnv().endpoint);
});
after(async () => {
  raw.destroy();
  await proxy?.close();
  await rm(dir, { recursive: true, force: true });
});
afterEach(() => removeBucket(bucket));
beforeEach(async () => {
  proxy.reset();
  bucket = uniqueBucket('sessions');
  await storage().verify({ createBucket: true });
});

describe('s3 upload sessions', () => {
  it('uploads whole parts as writes fill them, keeps the remainder in one tail renamed per write, and completes bytes and SHA-256', async () => {
    const s = storage();
    const data = randomBytes(17 * MiB + 123);
    const cuts = [0, 3 * MiB, 7 * MiB, 7 * MiB + 1, 13 * MiB + 1, data.length];
    const { id } = await s.sessions.create('videos/odd.bin', { metadata: { by: 'ana' }, contentType: 'video/mp4' });
    for (let i = 1; i < cuts.length; i++) {
      const offset = cuts[i] as number;
      const written = await s.sessions.write(id, cuts[i - 1] as number, data.subarray(cuts[i - 1], offset));
      assert.equal(written.offset, offset);
      assert.equal(await partsOf('videos/odd.bin'), Math.floor(offset / (5 * MiB)), `whole parts at ${offset}`);
      assert.deepEqual(await tails(id), offset % (5 * MiB) === 0 ? [] : [`tail-${offset}`], 'one tail, named by the offset after the write');
      assert.equal((await storage().sessions.get(id)).offset, offset, 'another driver sees the offset');
    }
    const info = await s.sessions.complete(id);
    assert.equal(info.sha256, digest(data));
    const stat = await s.stat('videos/odd.bin');
    assert.deepEqual({ size: stat.size, sha256: stat.sha256, type: stat.contentType, metadata: stat.metadata }, { size: data.length, sha256: digest(data), type: 'video/mp4', metadata: { by: 'ana' } });
    assert.match(stat.etag, /-4$/, 'three whole parts and the tail as the last');
    assert.ok((await s.get('videos/odd.bin')).equals(data));
    assert.deepEqual(await tails(id), []);
    assert.equal(await uploadOf('videos/odd.bin'), undefined);
    await rejectsWith(s.sessions.get(id), 'E_NOT_FOUND');
  });

  it('stores the expected SHA-256 from the start when it was given, and a known size gets equal parts', async () => {
    const s = storage();
    const data = randomBytes(11 * MiB);
    const { id } = await s.sessions.create('videos/expected.bin', { size: data.length, sha256: digest(data) });
    await s.sessions.write(id, 0, data.subarray(0, 6 * MiB));
    await s.sessions.write(id, 6 * MiB, data.subarray(6 * MiB));
    assert.equal((await s.sessions.complete(id)).sha256, digest(data));
    assert.equal((await s.stat('videos/expected.bin')).sha256, digest(data));
    assert.ok((await s.get('videos/expected.bin')).equals(data));
  });

  it('resumes a session whose writer was killed with SIGKILL: the committed offset, and a SHA-256 over both processes', async () => {
    const data = randomBytes(22 * MiB);
    const file = join(dir, 'session.bin');
    await writeFile(file, data);
    const { id } = await storage().sessions.create('videos/killed.bin');
    // The proxy holds the third part, so the writer stops with two parts committed.
    proxy.add({ match: (r) => r.method === 'PUT' && r.query.get('partNumber') === '3', action: { kind: 'hang' }, times: 10 });
    const fixture = fileURLToPath(new URL('./fixtures/session-writer.ts', import.meta.url));
    const child = spawn(process.execPath, ['--import', 'tsx', fixture, proxy.url, bucket, id, file], { env: { ...process.env, NODE_NO_WARNINGS: '1' }, stdio: 'ignore' });
    const exited = new Promise((resolve) => child.on('exit', resolve));
    for (let i = 0; i < 1200 && (await stateOf(id).then((st) => (st.record as { offset: number }).offset)) < 10 * MiB; i++) await sleep(100);
    child.kill('SIGKILL');
    await exited;
    proxy.reset();
    const s = storage();
    const { offset } = await s.sessions.get(id);
    assert.equal(offset, 10 * MiB, 'two parts committed');
    await s.sessions.write(id, offset, data.subarray(offset));
    assert.equal((await s.sessions.complete(id)).sha256, digest(data));
    assert.ok((await s.get('videos/killed.bin')).equals(data));
  });

  it('keeps the parts and tail of a body that failed midway, and counts none of a checked write that did not match', async () => {
    const s = storage();
    const data = randomBytes(19 * MiB);
    const { id } = await s.sessions.create('videos/failing.bin');
    async function* failsAfter(bytes: Buffer): AsyncGenerator<Buffer> {
      for (let at = 0; at < bytes.length; at += MiB) yield bytes.subarray(at, at + MiB);
      throw new Error('connection reset by the client');
    }
    await rejectsWith(s.sessions.write(id, 0, failsAfter(data.subarray(0, 7 * MiB))), 'E_INVALID_ARGUMENT', 'reading the body failed');
    assert.equal((await s.sessions.get(id)).offset, 7 * MiB, 'one part and a 2 MiB tail kept');
    assert.deepEqual(await tails(id), [`tail-${7 * MiB}`]);
    // A checked write that does not match: its parts were sent, but nothing of it counts.
    await rejectsWith(s.sessions.write(id, 7 * MiB, data.subarray(7 * MiB, 19 * MiB), { sha256: digest(Buffer.from('other')) }), 'E_CHECKSUM_MISMATCH');
    assert.equal((await s.sessions.get(id)).offset, 7 * MiB);
    assert.ok((await partsOf('videos/failing.bin')) > 1, 'the unmatched write had sent parts, left uncommitted');
    await s.sessions.write(id, 7 * MiB, data.subarray(7 * MiB), { sha256: digest(data.subarray(7 * MiB)) });
    assert.equal((await s.sessions.complete(id)).sha256, digest(data));
    assert.ok((await s.get('videos/failing.bin')).equals(data), 'the uncommitted parts were replaced');
  });

  it('lets one writer at a time write a session, also from another driver (the lease), and takes over the lease of a writer elsewhere only when it is gone', async () => {
    const first = storage();
    const second = storage();
    const { id } = await first.sessions.create('videos/one-writer.bin');
    let release: () => void = () => undefined;
    const held = new Promise<void>((resolve) => (release = resolve));
    async function* slow(): AsyncGenerator<Buffer> {
      yield Buffer.from('first ');
      await held;
      yield Buffer.from('writer');
    }
    const writing = first.sessions.write(id, 0, slow());
    for (let i = 0; i < 100 && !(await tails(id)).includes('lease'); i++) await sleep(50);
    assert.ok((await tails(id)).includes('lease'), 'the first writer holds the lease');
    const err = await rejectsWith(second.sessions.write(id, 0, Buffer.from('second')), 'E_PRECONDITION_FAILED', 'being written');
    assert.equal(err.retryable, true);
    release();
    assert.equal((await writing).offset, 12);
    assert.deepEqual(await tails(id), ['tail-12'], 'the lease is released');
    // A fresh lease of a writer on another host: busy. (One not refreshed for 2 minutes would be taken over.)
    await raw.send(new PutObjectCommand({ Bucket: bucket, Key: `.stowage/sessions/${id}/lease`, Body: JSON.stringify({ host: 'elsewhere', pid: 1, token: 'x' }) }));
    await rejectsWith(second.sessions.write(id, 12, Buffer.from('!')), 'E_PRECONDITION_FAILED');
    // One of a process of this host that is gone: taken over.
    await raw.send(new PutObjectCommand({ Bucket: bucket, Key: `.stowage/sessions/${id}/lease`, Body: JSON.stringify({ host: hostname(), pid: 2 ** 22 + 12345, token: 'y' }) }));
    assert.equal((await second.sessions.write(id, 12, Buffer.from('!'))).offset, 13);
    await second.sessions.complete(id);
    assert.equal((await first.get('videos/one-writer.bin')).toString(), 'first writer!');
    assert.deepEqual(await tails(id), [], 'nothing left, the lease neither');
  });

  it('refuses a session whose parts or tail the bucket lost (E_UNAVAILABLE), never resuming it', async () => {
    const s = storage();
    const { id } = await s.sessions.create('videos/lost-tail.bin');
    await s.sessions.write(id, 0, randomBytes(7 * MiB));
    await raw.send(new DeleteObjectCommand({ Bucket: bucket, Key: `.stowage/sessions/${id}/tail-${7 * MiB}` }));
    await rejectsWith(s.sessions.get(id), 'E_UNAVAILABLE', 'tail');
    await rejectsWith(s.sessions.write(id, 7 * MiB, Buffer.from('more')), 'E_UNAVAILABLE');
    const other = await s.sessions.create('videos/lost-parts.bin');
    await s.sessions.write(other.id, 0, randomBytes(6 * MiB));
    await raw.send(new AbortMultipartUploadCommand({ Bucket: bucket, Key: 'videos/lost-parts.bin', UploadId: await uploadOf('videos/lost-parts.bin') }));
    await rejectsWith(s.sessions.get(other.id), 'E_UNAVAILABLE', 'upload is gone');
    await s.sessions.abort(id);
    await s.sessions.abort(other.id);
    assert.deepEqual(await s.sessions.list(), []);
  });

  it('takes a session whose upload is gone after it was completing for completed: E_NOT_FOUND, and its state removed', async () => {
    const s = storage();
    const { id } = await s.sessions.create('videos/completing.bin');
    await s.sessions.write(id, 0, randomBytes(6 * MiB));
    // What a crash right after CompleteMultipartUpload leaves: the state marked, the upload gone.
    const state = { ...(await stateOf(id)), completing: true };
    await raw.send(new PutObjectCommand({ Bucket: bucket, Key: `.stowage/sessions/${id}.json`, Body: JSON.stringify(state) }));
    await raw.send(new AbortMultipartUploadCommand({ Bucket: bucket, Key: 'videos/completing.bin', UploadId: await uploadOf('videos/completing.bin') }));
    await rejectsWith(s.sessions.get(id), 'E_NOT_FOUND');
    const left = await raw.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: '.stowage/sessions/' }));
    assert.equal(left.KeyCount ?? 0, 0, 'state and tail removed');
  });

  it('leaves session uploads out of incompleteUploads (gc uploads spares them), never lists their objects, and abort frees everything', async () => {
    const s = storage();
    const { id } = await s.sessions.create('videos/open.bin');
    await s.sessions.write(id, 0, randomBytes(6 * MiB));
    assert.ok(await uploadOf('videos/open.bin'));
    assert.deepEqual(await s.incompleteUploads(), []);
    assert.deepEqual((await s.list()).objects, []);
    await s.sessions.abort(id);
    assert.equal(await uploadOf('videos/open.bin'), undefined);
    const left = await raw.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: '.stowage/' }));
    assert.equal(left.KeyCount ?? 0, 0);
  });

  it('keeps a session whose multipart completion a condition refused, and completes it later', async () => {
    const s = storage();
    await s.put('videos/exists.bin', 'old');
    const data = randomBytes(7 * MiB);
    const { id } = await s.sessions.create('videos/exists.bin');
    await s.sessions.write(id, 0, data);
    await rejectsWith(s.sessions.complete(id, { ifNoneMatch: '*' }), 'E_ALREADY_EXISTS');
    assert.equal((await s.sessions.get(id)).offset, 7 * MiB);
    assert.equal((await s.get('videos/exists.bin')).toString(), 'old');
    assert.equal((await s.sessions.complete(id)).sha256, digest(data));
    assert.ok((await s.get('videos/exists.bin')).equals(data));
  });

  it('joins partial sessions of whole parts and tails: each sealed under .stowage/ once, no upload left, nothing left after', async () => {
    const s = storage();
    const a = randomBytes(11 * MiB + 5);
    const b = randomBytes(5 * MiB + 100);
    const c = randomBytes(1000);
    const ids: string[] = [];
    for (const [name, data] of [['a', a], ['b', b], ['c', c]] as const) {
      const { id } = await s.sessions.create(`parts/${name}`, { partial: true, size: data.length });
      for (let at = 0; at < data.length; at += 3 * MiB) await s.sessions.write(id, at, data.subarray(at, at + 3 * MiB));
      ids.push(id);
    }
    assert.equal(await uploadOf('parts/a'), undefined, 'a partial upload is not made at its key');
    await s.put('videos/joined.bin', 'old');
    // A refused condition seals the sessions and keeps them; the retry reads what was sealed.
    await rejectsWith(s.sessions.concat('videos/joined.bin', ids, { ifNoneMatch: '*' }), 'E_ALREADY_EXISTS');
    for (const id of ids) assert.deepEqual(await tails(id), ['sealed'], 'sealed, its tails gone');
    assert.equal((await stateOf(ids[0] as string)).sealed, true);
    const uploads = await raw.send(new ListMultipartUploadsCommand({ Bucket: bucket }));
    assert.equal(uploads.Uploads?.length ?? 0, 0, 'sealing completed every partial upload');
    const whole = Buffer.concat([a, b, c]);
    const info = await storage().sessions.concat('videos/joined.bin', ids, { contentType: 'video/mp4' });
    assert.equal(info.sha256, digest(whole));
    const stat = await s.stat('videos/joined.bin');
    assert.deepEqual({ size: stat.size, sha256: stat.sha256, type: stat.contentType }, { size: whole.length, sha256: digest(whole), type: 'video/mp4' });
    assert.ok((await s.get('videos/joined.bin')).equals(whole));
    const left = await raw.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: '.stowage/' }));
    assert.equal(left.KeyCount ?? 0, 0, 'states and sealed objects removed');
  });

  it('takes a partial session whose upload is gone after it was completing for sealed when its sealed object holds it all', async () => {
    const s = storage();
    const data = randomBytes(6 * MiB);
    const { id } = await s.sessions.create('parts/crashed', { partial: true, size: data.length });
    await s.sessions.write(id, 0, data);
    const before = await stateOf(id);
    await s.put('videos/taken.bin', 'taken');
    await rejectsWith(s.sessions.concat('videos/taken.bin', [id], { ifNoneMatch: '*' }), 'E_ALREADY_EXISTS');
    // What a crash right after sealing's CompleteMultipartUpload leaves: the state before, marked completing.
    await raw.send(new PutObjectCommand({ Bucket: bucket, Key: `.stowage/sessions/${id}.json`, Body: JSON.stringify({ ...before, completing: true }) }));
    assert.equal((await s.sessions.get(id)).offset, data.length);
    assert.equal((await stateOf(id)).sealed, true, 'the state was mended');
    assert.equal((await s.sessions.concat('videos/fresh.bin', [id])).sha256, digest(data));
    assert.ok((await s.get('videos/fresh.bin')).equals(data));
    // A sealed object that went missing is a loss, never an empty partial.
    const { id: lost } = await s.sessions.create('parts/lost', { partial: true, size: 3 });
    await s.sessions.write(lost, 0, Buffer.from('abc'));
    await rejectsWith(s.sessions.concat('videos/taken.bin', [lost], { ifNoneMatch: '*' }), 'E_ALREADY_EXISTS');
    await raw.send(new DeleteObjectCommand({ Bucket: bucket, Key: `.stowage/sessions/${lost}/sealed` }));
    await rejectsWith(s.sessions.concat('videos/lost.bin', [lost]), 'E_UNAVAILABLE', 'sealed object is missing');
    await s.sessions.abort(lost);
  });

  it('refuses bytes past what the last part the provider allows can hold (maxObjectSize), keeping the whole parts before them', async () => {
    const s = storage({ maxParts: 2 });
    const capacity = new PartSchedule({ partSize: 5 * MiB, maxParts: 2, equalParts: false, provider: '' }).capacity;
    const data = randomBytes(capacity + 1);
    const { id } = await s.sessions.create('videos/too-long.bin');
    assert.equal(s.capabilities.maxObjectSize, capacity);
    async function* streamed(): AsyncGenerator<Buffer> {
      for (let at = 0; at < data.length; at += MiB) yield data.subarray(at, at + MiB);
    }
    await rejectsWith(s.sessions.write(id, 0, data), 'E_TOO_LARGE', `limit of ${capacity} bytes`);
    assert.equal((await s.sessions.get(id)).offset, 0, 'a buffer too large is refused whole');
    await rejectsWith(s.sessions.write(id, 0, streamed()), 'E_TOO_LARGE', `limit of ${capacity} bytes`);
    assert.equal((await s.sessions.get(id)).offset, capacity, 'the two whole parts stay, and no tail past them');
    assert.deepEqual(await tails(id), []);
    assert.equal((await s.sessions.complete(id)).sha256, digest(data.subarray(0, capacity)));
  });
});
