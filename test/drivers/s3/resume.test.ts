/**
 * putFile resume on the real RGW, through the fault proxy: an upload interrupted by a
 * cancel (the proxy holding every part past the third) or by SIGKILL of a `stowage put`
 * process is resumed by the next run, which sends only the missing parts (counted at
 * the proxy) and stores the right bytes, SHA-256 and attributes. A changed file starts
 * over, a wrong expected SHA-256 completes nothing, parts the state never recorded or
 * that were replaced behind its back are checked against the file, the state objects
 * are never listed and their keys are refused, and gc removes stale state.
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, open, readFile, rm, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, afterEach, before, beforeEach, describe, it } from 'node:test';
import { AbortMultipartUploadCommand, GetObjectCommand, ListMultipartUploadsCommand, ListObjectsV2Command, ListPartsCommand, PutObjectCommand, UploadPartCommand } from '@aws-sdk/client-s3';
import { createStorage, type PutOptions, type S3DriverOptions, type Storage } from '../../../src/index.js';
import { cli, startCli } from '../../cli/run.js';
import { rejectsWith } from '../../conformance/harness.js';
import { rawS3Client, removeBucket, s3Options, s3TestEnv, uniqueBucket } from './env.js';
import { startFaultProxy, type FaultProxy } from './fault-proxy.js';

const MiB = 1024 * 1024;
/** 37 MiB: seven parts of 5 MiB and a last one of 2 MiB. */
const FILE_SIZE = 37 * MiB;
const PARTS = 8;
let proxy: FaultProxy;
let bucket: string;
let dir: string;
const raw = rawS3Client();

function viaProxy(extra: Partial<S3DriverOptions> = {}): Storage {
  return createStorage({ driver: 's3', ...s3Options(bucket, { endpoint: proxy.url, partSize: 5 * MiB, multipartThreshold: 5 * MiB, concurrency: 2, retry: { baseDelayMs: 5, throttleBaseDelayMs: 10 }, ...extra }) });
}

/** The location URL of the bucket behind the proxy, for the CLI. */
function proxyUrl(): string {
  const env = s3TestEnv();
  return `s3+http://${encodeURIComponent(env.accessKeyId)}:${encodeURIComponent(env.secretAccessKey)}@${new URL(proxy.url).host}/${bucket}?provider=ceph&region=${env.region}`;
}

const partNumberOf = (url: string) => Number(new URL(url, 'http://x').searchParams.get('partNumber') ?? 0);
/** UploadPart requests the proxy forwarded since its last reset. */
const partsSent = () => proxy.seen.filter((r) => r.method === 'PUT' && partNumberOf(r.url) > 0 && !r.faulted).length;

async function newFile(name: string, size = FILE_SIZE): Promise<{ path: string; sha256: string }> {
  const path = join(dir, name);
  const data = randomBytes(size);
  await writeFile(path, data);
  return { path, sha256: createHash('sha256').update(data).digest('hex') };
}

async function uploadIdOf(key: string): Promise<string | undefined> {
  const out = await raw.send(new ListMultipartUploadsCommand({ Bucket: bucket, Prefix: key }));
  return out.Uploads?.find((u) => u.Key === key)?.UploadId;
}

/** The part numbers the upload of `key` holds on the server. */
async function storedParts(key: string): Promise<number[]> {
  const uploadId = await uploadIdOf(key);
  if (!uploadId) return [];
  const out = await raw.send(new ListPartsCommand({ Bucket: bucket, Key: key, UploadId: uploadId }));
  return (out.Parts ?? []).map((p) => p.PartNumber ?? 0);
}

/** Waits (polling the server, not the clock) until the upload of `key` holds `parts` parts. */
async function waitForParts(key: string, parts: number): Promise<void> {
  for (let i = 0; i < 1200; i++) {
    if ((await storedParts(key)).length >= parts) return;
    await sleep(100);
  }
  throw new Error(`the upload of ${key} never reached ${parts} parts`);
}

/** Makes the proxy hold (never answer) every part past `parts`, so an upload stops with exactly that many stored. */
function holdPartsAfter(parts: number): void {
  proxy.add({ match: (r) => r.method === 'PUT' && partNumberOf(r.url) > parts, action: { kind: 'hang' }, times: 1000 });
}

/** A putFile cancelled once `parts` parts are stored; the proxy is reset afterwards. */
async function interrupted(storage: Storage, key: string, path: string, parts: number, opts: PutOptions = {}): Promise<void> {
  holdPartsAfter(parts);
  const controller = new AbortController();
  const writing = storage.putFile(key, path, { ...opts, signal: controller.signal });
  await waitForParts(key, parts);
  controller.abort();
  await rejectsWith(writing, 'E_ABORTED');
  proxy.reset();
}

/** The S3 keys under the reserved area, as the bucket holds them. */
async function stateObjects(): Promise<string[]> {
  const out = await raw.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: '.stowage/' }));
  return (out.Contents ?? []).map((o) => o.Key ?? '');
}

async function sha256Of(storage: Storage, key: string): Promise<string> {
  return createHash('sha256').update(await storage.get(key)).digest('hex');
}

before(async () => {
  proxy = await startFaultProxy(s3TestEnv().endpoint);
  dir = await mkdtemp(join(tmpdir(), 'stowage-resume-'));
});
after(async () => {
  raw.destroy();
  await proxy?.close();
  await rm(dir, { recursive: true, force: true });
});
afterEach(() => removeBucket(bucket));
// A bucket per test, so each sees only its own uploads and states.
beforeEach(async () => {
  proxy.reset();
  bucket = uniqueBucket('resume');
  await createStorage({ driver: 's3', ...s3Options(bucket) }).verify({ createBucket: true });
});

describe('s3 putFile resume', () => {
  it('resumes a cancelled upload: only the missing parts are sent, bytes, SHA-256 and the new attributes stored', async () => {
    const storage = viaProxy();
    const file = await newFile('cancelled.bin');
    await interrupted(storage, 'videos/cancelled.bin', file.path, 3, { contentType: 'application/x-first', metadata: { run: '1' } });
    assert.equal(await storage.exists('videos/cancelled.bin'), false, 'nothing visible after the cancel');
    assert.deepEqual(await storedParts('videos/cancelled.bin'), [1, 2, 3]);
    assert.equal((await stateObjects()).length, 1, 'the state is kept for the next run');

    const info = await storage.putFile('videos/cancelled.bin', file.path, { contentType: 'video/mp4', metadata: { run: '2' } });
    assert.equal(info.resumedBytes, 15 * MiB);
    assert.equal(partsSent(), PARTS - 3, 'only the parts the upload lacked');
    assert.equal(info.sha256, file.sha256);
    const stat = await storage.stat('videos/cancelled.bin');
    assert.deepEqual({ size: stat.size, sha256: stat.sha256, type: stat.contentType, metadata: stat.metadata }, { size: FILE_SIZE, sha256: file.sha256, type: 'video/mp4', metadata: { run: '2' } });
    assert.equal(await sha256Of(storage, 'videos/cancelled.bin'), file.sha256);
    assert.deepEqual(await stateObjects(), [], 'the state is deleted once complete');
    assert.deepEqual(await storage.incompleteUploads(), []);
    // Run again: the object is stored, so it is a fresh upload that resumes nothing.
    assert.equal((await storage.putFile('videos/cancelled.bin', file.path)).resumedBytes, 0);
  });

  it('resumes after SIGKILL of a stowage put process, and says so', async () => {
    // The CLI's defaults: 16 MiB threshold, 8 MiB parts; 64 MiB is 8 parts.
    const file = await newFile('killed.bin', 64 * MiB);
    holdPartsAfter(3);
    const first = startCli(['-s', proxyUrl(), 'put', file.path, 'videos/killed.bin']);
    await waitForParts('videos/killed.bin', 3);
    first.child.kill('SIGKILL');
    assert.equal((await first.done).code, null, 'killed, not finished');
    proxy.reset();

    const second = await cli(['-s', proxyUrl(), 'put', file.path, 'videos/killed.bin']);
    assert.equal(second.code, 0, second.stderr);
    assert.match(second.stdout, /resumed 24\.0 MiB of 64\.0 MiB/);
    assert.equal(partsSent(), 5);
    const storage = viaProxy();
    assert.equal((await storage.stat('videos/killed.bin')).sha256, file.sha256);
    assert.equal(await sha256Of(storage, 'videos/killed.bin'), file.sha256);
    assert.deepEqual(await stateObjects(), []);
  });

  it('reports resumedBytes in put --json', async () => {
    const file = await newFile('json.bin');
    await interrupted(viaProxy(), 'videos/json.bin', file.path, 2);
    const out = await cli(['-s', proxyUrl(), 'put', file.path, 'videos/json.bin', '--json']);
    assert.equal(out.code, 0, out.stderr);
    const printed = JSON.parse(out.stdout) as { resumedBytes: number; sha256: string; size: number };
    assert.deepEqual({ resumedBytes: printed.resumedBytes, sha256: printed.sha256, size: printed.size }, { resumedBytes: 10 * MiB, sha256: file.sha256, size: FILE_SIZE });
    const plain = await cli(['-s', proxyUrl(), 'put', '-', 'notes/stdin.txt', '--json'], { input: 'hello' });
    assert.equal((JSON.parse(plain.stdout) as { resumedBytes: number }).resumedBytes, 0);
  });

  it('adopts parts the state never recorded (its writes failed) by their ETag, the MD5 of the local part', async () => {
    const storage = viaProxy();
    const file = await newFile('unrecorded.bin');
    let stateWrites = 0;
    // The first state write (right after the upload is created) passes; every later one fails.
    proxy.add({ match: (r) => r.method === 'PUT' && r.url.includes('/.stowage/') && stateWrites++ >= 1, action: { kind: 'status', status: 500, code: 'InternalError' }, times: 1000 });
    await interrupted(storage, 'videos/unrecorded.bin', file.path, 3);
    const [stateKey] = await stateObjects();
    assert.deepEqual((await stateContent(stateKey ?? '')).parts, [], 'no part was recorded');
    const info = await storage.putFile('videos/unrecorded.bin', file.path);
    assert.equal(info.resumedBytes, 15 * MiB);
    assert.equal(partsSent(), PARTS - 3);
    assert.equal(await sha256Of(storage, 'videos/unrecorded.bin'), file.sha256);
  });

  it('sends again a part replaced behind its back (same size, other bytes)', async () => {
    const storage = viaProxy();
    const file = await newFile('tampered.bin');
    await interrupted(storage, 'videos/tampered.bin', file.path, 3);
    const uploadId = await uploadIdOf('videos/tampered.bin');
    await raw.send(new UploadPartCommand({ Bucket: bucket, Key: 'videos/tampered.bin', UploadId: uploadId, PartNumber: 2, Body: randomBytes(5 * MiB) }));
    const info = await storage.putFile('videos/tampered.bin', file.path);
    assert.equal(info.resumedBytes, 10 * MiB);
    assert.equal(partsSent(), PARTS - 2);
    assert.equal(await sha256Of(storage, 'videos/tampered.bin'), file.sha256);
  });

  it('starts over when the local bytes changed although the file kept its size and mtime, so no stale SHA-256 is ever stored', async () => {
    const storage = viaProxy();
    const file = await newFile('rewritten.bin');
    const when = new Date(Math.floor(Date.now() / 1000) * 1000 - 3600_000); // whole seconds: restorable exactly
    await utimes(file.path, when, when);
    await interrupted(storage, 'videos/rewritten.bin', file.path, 3);
    const staleUpload = await uploadIdOf('videos/rewritten.bin');
    const handle = await open(file.path, 'r+');
    const replacement = randomBytes(1024);
    await handle.write(replacement, 0, replacement.length, 5 * MiB + 100); // inside part 2
    await handle.close();
    await utimes(file.path, when, when);
    const rewritten = createHash('sha256').update(await readFile(file.path)).digest('hex');
    const info = await storage.putFile('videos/rewritten.bin', file.path);
    assert.equal(info.resumedBytes, 0, 'the parts stored are of bytes the digest read before no longer covers');
    // Every part again (a missing part or two may have gone to the stale upload before the check found the change).
    assert.ok(partsSent() >= PARTS);
    assert.equal(info.sha256, rewritten);
    assert.equal((await storage.stat('videos/rewritten.bin')).sha256, rewritten);
    assert.equal(await sha256Of(storage, 'videos/rewritten.bin'), rewritten);
    assert.equal(proxy.seen.some((r) => r.copy), false, 'created with the right digest, never fixed by a copy');
    assert.notEqual(await uploadIdOf('videos/rewritten.bin'), staleUpload, 'the stale upload was aborted');
    assert.deepEqual(await storage.incompleteUploads(), []);
    assert.deepEqual(await stateObjects(), []);
  });

  it('starts over when given the SHA-256 of bytes rewritten under the same size and mtime, not the one the upload was created with', async () => {
    const storage = viaProxy();
    const file = await newFile('expected.bin');
    const when = new Date(Math.floor(Date.now() / 1000) * 1000 - 3600_000);
    await utimes(file.path, when, when);
    await interrupted(storage, 'videos/expected.bin', file.path, 3);
    const handle = await open(file.path, 'r+');
    await handle.write(randomBytes(1024), 0, 1024, 100);
    await handle.close();
    await utimes(file.path, when, when);
    const rewritten = createHash('sha256').update(await readFile(file.path)).digest('hex');
    const info = await storage.putFile('videos/expected.bin', file.path, { sha256: rewritten });
    assert.equal(info.resumedBytes, 0);
    assert.equal(await sha256Of(storage, 'videos/expected.bin'), rewritten);
    assert.equal((await storage.stat('videos/expected.bin')).sha256, rewritten);
    assert.equal(proxy.seen.some((r) => r.copy), false, 'created with the right digest, never fixed by a copy');
    assert.deepEqual(await storage.incompleteUploads(), [], 'the upload created with the old digest was aborted');
    assert.deepEqual(await stateObjects(), []);
  });

  it('starts over from a state without the part digests (an earlier version\'s), aborting its upload', async () => {
    const storage = viaProxy();
    const file = await newFile('old-state.bin');
    await interrupted(storage, 'videos/old-state.bin', file.path, 3);
    const [stateKey] = await stateObjects();
    const { sha256: _whole, partSha256: _parts, ...older } = (await stateContent(stateKey ?? '')) as { sha256?: string; partSha256?: string[] };
    await raw.send(new PutObjectCommand({ Bucket: bucket, Key: stateKey, Body: JSON.stringify(older), ContentType: 'application/json' }));
    const info = await storage.putFile('videos/old-state.bin', file.path);
    assert.equal(info.resumedBytes, 0, 'nothing adopted that cannot be checked against the digest');
    assert.equal(partsSent(), PARTS);
    assert.equal(await sha256Of(storage, 'videos/old-state.bin'), file.sha256);
    assert.deepEqual(await storage.incompleteUploads(), [], 'the old upload was aborted');
    assert.deepEqual(await stateObjects(), []);
  });

  it('starts over for a changed file; the old upload is left to gc', async () => {
    const storage = viaProxy();
    const file = await newFile('changed.bin');
    await interrupted(storage, 'videos/changed.bin', file.path, 3);
    const later = new Date(Date.now() + 60_000);
    await utimes(file.path, later, later);
    const info = await storage.putFile('videos/changed.bin', file.path);
    assert.equal(info.resumedBytes, 0);
    assert.equal(partsSent(), PARTS);
    assert.equal(await sha256Of(storage, 'videos/changed.bin'), file.sha256);
    const left = await storage.incompleteUploads({ prefix: 'videos/changed.bin' });
    assert.equal(left.length, 1, 'the first upload is still there');
    assert.equal((await stateObjects()).length, 1, 'with its state');
    await storage.abortUpload(left[0]!);
    assert.deepEqual(await stateObjects(), [], 'aborting an upload deletes its state');
    assert.deepEqual(await storage.incompleteUploads({ prefix: 'videos/changed.bin' }), []);
  });

  it('fails a create-only putFile onto an existing key before sending a part', async () => {
    const storage = viaProxy();
    const file = await newFile('exists.bin');
    await storage.put('videos/exists.bin', 'already here');
    await rejectsWith(storage.putFile('videos/exists.bin', file.path, { ifNoneMatch: '*' }), 'E_ALREADY_EXISTS');
    assert.equal(partsSent(), 0);
    assert.equal((await storage.get('videos/exists.bin')).toString(), 'already here');
    assert.deepEqual(await stateObjects(), []);
    assert.equal(await uploadIdOf('videos/exists.bin'), undefined);
  });

  it('completes nothing when the expected SHA-256 is wrong, also when resuming', async () => {
    const storage = viaProxy();
    const file = await newFile('wrong.bin');
    const wrong = createHash('sha256').update('something else').digest('hex');
    await rejectsWith(storage.putFile('videos/wrong.bin', file.path, { sha256: wrong }), 'E_CHECKSUM_MISMATCH');
    assert.equal(partsSent(), 0, 'the file is hashed before the upload is created');
    assert.equal(await storage.exists('videos/wrong.bin'), false);
    assert.equal(await uploadIdOf('videos/wrong.bin'), undefined, 'no upload was left');
    assert.deepEqual(await stateObjects(), []);
    await interrupted(storage, 'videos/wrong.bin', file.path, 2);
    await rejectsWith(storage.putFile('videos/wrong.bin', file.path, { sha256: wrong }), 'E_CHECKSUM_MISMATCH');
    assert.equal(partsSent(), 0, 'the recorded digest is checked before a part is sent');
    assert.equal(await storage.exists('videos/wrong.bin'), false);
    assert.equal(await uploadIdOf('videos/wrong.bin'), undefined);
    assert.deepEqual(await stateObjects(), []);
  });
});

/** What a state object holds, read behind Stowage's back. */
async function stateContent(key: string): Promise<{ parts: unknown[] }> {
  const out = await raw.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
  return JSON.parse((await out.Body?.transformToString('utf8')) ?? '') as { parts: unknown[] };
}

describe('s3 reserved area', () => {
  it('never lists the state objects and refuses keys under .stowage/', async () => {
    const storage = viaProxy();
    const file = await newFile('listed.bin');
    await storage.put('top.txt', 'a file at the top');
    await interrupted(storage, 'videos/listed.bin', file.path, 1);
    assert.ok((await stateObjects()).length >= 1);
    const keys = (await storage.list({ limit: 1000 })).objects.map((o) => o.key);
    assert.ok(!keys.some((k) => k.startsWith('.stowage')), keys.join(', '));
    assert.ok(!(await storage.list({ delimiter: '/' })).prefixes.includes('.stowage/'));
    assert.deepEqual((await storage.list({ prefix: '.stowage/' })).objects, []);
    for (const key of ['.stowage/uploads/x.json', '.stowage']) {
      await rejectsWith(storage.put(key, 'x'), 'E_INVALID_KEY', 'reserved');
      await rejectsWith(storage.putFile(key, file.path), 'E_INVALID_KEY', 'reserved');
      await rejectsWith(storage.get(key), 'E_INVALID_KEY', 'reserved');
      await rejectsWith(storage.stat(key), 'E_INVALID_KEY', 'reserved');
      await rejectsWith(storage.delete(key), 'E_INVALID_KEY', 'reserved');
      await rejectsWith(storage.deleteMany(['top.txt', key]), 'E_INVALID_KEY', 'reserved');
      await rejectsWith(storage.copy('top.txt', key), 'E_INVALID_KEY', 'reserved');
      await rejectsWith(storage.signedUrl(key, { method: 'GET' }), 'E_INVALID_KEY', 'reserved');
    }
    assert.equal(await storage.exists('top.txt'), true, 'the refused deleteMany deleted nothing');
    await storage.put('.stowagex/ok.txt', 'not reserved');
    assert.equal((await storage.get('.stowagex/ok.txt')).toString(), 'not reserved');
  });

  it('gc uploads removes stale uploads with their state, and states whose upload is gone', async () => {
    const storage = viaProxy();
    const a = await newFile('gc-a.bin');
    const b = await newFile('gc-b.bin');
    await interrupted(storage, 'gc/a.bin', a.path, 1);
    await interrupted(storage, 'gc/b.bin', b.path, 1);
    // b's upload aborted behind Stowage's back: its state is left without an upload.
    await raw.send(new AbortMultipartUploadCommand({ Bucket: bucket, Key: 'gc/b.bin', UploadId: await uploadIdOf('gc/b.bin') }));
    assert.equal((await stateObjects()).length, 2);
    assert.deepEqual((await storage.incompleteUploads({ prefix: 'gc/' })).map((u) => u.key).sort(), ['gc/a.bin', 'gc/b.bin']);
    assert.deepEqual(await storage.incompleteUploads({ prefix: 'other/' }), []);

    const young = await cli(['-s', proxyUrl(), 'gc', 'uploads', 'gc/', '--yes']);
    assert.match(young.stdout, /aborted 0/, 'younger than the default 24 h: kept');
    assert.equal((await stateObjects()).length, 2);
    const swept = await cli(['-s', proxyUrl(), 'gc', 'uploads', 'gc/', '--older-than', '0s', '--yes']);
    assert.equal(swept.code, 0, swept.stderr);
    assert.match(swept.stdout, /aborted 2/);
    assert.deepEqual(await stateObjects(), []);
    assert.equal(await uploadIdOf('gc/a.bin'), undefined);
    assert.deepEqual(await storage.incompleteUploads(), []);
  });
});
