/**
 * All-or-nothing uploads over real HTTP, as a suite any backend runs: an object is
 * stored, then a write to its key fails at some point (a client that disconnects
 * mid-body or after a form's file part, a form with a second file or a field after the
 * file), and the object must be byte-for-byte and metadata-for-metadata what it was.
 * The signed `/files/` routes exist on backends that cannot presign (fs, memory); the
 * raw PUT and `POST /api/uploads` run everywhere.
 *
 * To know when to hang up, the storage's driver reports how many body bytes it has
 * read, so a disconnect lands after the server has what was sent, never by a timer.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { connect } from 'node:net';
import { after, before, describe, it } from 'node:test';
import type { FastifyInstance } from 'fastify';
import { buildApp, type Driver, type ObjectInfo, type Storage } from '../../src/index.js';
import { png } from './helpers.js';

const BOUNDARY = 'AllOrNothingBoundary';

/** What the driver has been handed by puts in progress: body bytes read, and whether each put settled. */
interface PutWatch {
  bytesRead: number;
  settled: number;
}

/** Wraps a driver so tests can see how far its puts got. */
function watched(driver: Driver, watch: PutWatch): Driver {
  return new Proxy(driver, {
    get(target, prop, receiver) {
      if (prop !== 'put') {
        const value = Reflect.get(target, prop, receiver) as unknown;
        return typeof value === 'function' ? ((value as (...args: unknown[]) => unknown).bind(target) as unknown) : value;
      }
      return async (key: string, body: AsyncIterable<Uint8Array>, opts: unknown) => {
        const counted = new Proxy(body, {
          get(b, p) {
            if (p === Symbol.asyncIterator) {
              return async function* () {
                for await (const chunk of b) {
                  watch.bytesRead += chunk.byteLength;
                  yield chunk;
                }
              };
            }
            const value = Reflect.get(b, p, b) as unknown;
            return typeof value === 'function' ? ((value as (...args: unknown[]) => unknown).bind(b) as unknown) : value;
          },
        });
        try {
          return await target.put(key, counted as never, opts as never);
        } finally {
          watch.settled++;
        }
      };
    },
  });
}

/** One multipart/form-data part: a field, or a file. */
type Part = { name: string; value: string } | { name: string; filename: string; type: string; data: Buffer };

function partBytes(part: Part): Buffer {
  const head = 'value' in part ? `Content-Disposition: form-data; name="${part.name}"\r\n\r\n` : `Content-Disposition: form-data; name="${part.name}"; filename="${part.filename}"\r\nContent-Type: ${part.type}\r\n\r\n`;
  return Buffer.concat([Buffer.from(`--${BOUNDARY}\r\n${head}`), 'value' in part ? Buffer.from(part.value) : part.data, Buffer.from('\r\n')]);
}

/** A whole form body. */
export function formBody(parts: Part[]): Buffer {
  return Buffer.concat([...parts.map(partBytes), Buffer.from(`--${BOUNDARY}--\r\n`)]);
}

/** Everything about an object a failed write must leave alone. */
async function snapshot(storage: Storage, key: string): Promise<{ bytes: Buffer; info: ObjectInfo }> {
  return { bytes: await storage.get(key), info: await storage.stat(key) };
}

async function until(check: () => boolean | Promise<boolean>, what: string): Promise<void> {
  for (let i = 0; i < 300; i++) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 20));
  }
  assert.fail(`timed out waiting until ${what}`);
}

/**
 * Registers the suite for one backend; `makeStorage` builds a fresh storage. With
 * `signingSecret` (the storage's own, on fs and memory), the signed routes run too.
 */
export function describeAllOrNothing(backend: string, makeStorage: () => Promise<Storage>, opts: { signingSecret?: string; multipartBytes?: number } = {}): void {
  describe(`http: a failed write leaves the previous version exactly as it was (${backend} backend)`, () => {
    let app: FastifyInstance;
    let base: string;
    let storage: Storage;
    const watch: PutWatch = { bytesRead: 0, settled: 0 };
    const logLines: string[] = [];

    before(async () => {
      storage = await makeStorage();
      const uploadPolicies = { photos: { template: 'photos/{uuid}.{ext}', maxSize: 1_000_000, allowedTypes: ['image/png'] } };
      const served = storage.withDriver((driver) => watched(driver, watch));
      app = await buildApp({ storage: served, signingSecret: opts.signingSecret, uploadPolicies, logger: { level: 'info', stream: { write: (line: string) => void logLines.push(line) } } });
      base = await app.listen({ host: '127.0.0.1', port: 0 });
    });
    after(async () => app?.close());

    /** Stores the previous version: bytes, a type and metadata of its own. */
    async function existing(key: string): Promise<{ bytes: Buffer; info: ObjectInfo }> {
      await storage.put(key, randomBytes(3000), { contentType: 'image/png', metadata: { owner: 'first-writer' }, cacheControl: 'max-age=60' });
      return snapshot(storage, key);
    }

    /** Resolves once the error handler has answered (or logged) a failed request that began after `from` lines. */
    function handled(from: number): Promise<void> {
      return until(() => logLines.slice(from).some((line) => /"code":"E_|"msg":"(bad request|unexpected error|storage error)"/.test(line)), 'the server has handled the failed request');
    }

    /**
     * Sends a request head and the first `body` bytes of a longer declared body over a raw
     * socket, waits until `ready()`, then hangs up; resolves once the server has handled it.
     */
    async function hangUpAfter(head: string, declaredLength: number, body: Buffer, ready: () => boolean | Promise<boolean>): Promise<void> {
      const from = logLines.length;
      const socket = connect(Number(new URL(base).port), '127.0.0.1');
      socket.on('error', () => undefined);
      await new Promise<void>((resolve) => socket.once('connect', resolve));
      socket.write(`${head}\r\nHost: 127.0.0.1\r\nContent-Length: ${declaredLength}\r\n\r\n`);
      socket.write(body);
      await until(ready, 'the server has read what was sent');
      socket.destroy();
      await handled(from);
    }

    it('raw PUT: a client that disconnects mid-body', async () => {
      const key = 'keep/raw.bin';
      const before = await existing(key);
      const start = watch.bytesRead;
      await hangUpAfter(`PUT /api/objects/${key} HTTP/1.1\r\nContent-Type: text/plain`, 1_000_000, randomBytes(200_000), () => watch.bytesRead - start >= 200_000);
      assert.deepEqual(await snapshot(storage, key), before);
    });

    if (opts.multipartBytes !== undefined) {
      const sent = opts.multipartBytes;
      it('raw PUT: a client that disconnects once a multipart upload has begun', async () => {
        const key = 'keep/multipart.bin';
        const before = await existing(key);
        const start = watch.bytesRead;
        const begun = async () => watch.bytesRead - start >= sent && (await storage.incompleteUploads({ prefix: 'keep/' })).length === 1;
        await hangUpAfter(`PUT /api/objects/${key} HTTP/1.1`, sent * 4, randomBytes(sent), begun);
        await until(async () => (await storage.incompleteUploads({ prefix: 'keep/' })).length === 0, 'the multipart upload is aborted');
        assert.deepEqual(await snapshot(storage, key), before);
      });
    }

    it('POST /api/uploads: a client that disconnects in the second file undoes the first, and touches nothing else', async () => {
      const before = await existing('photos/existing.png');
      const objectsBefore = await storage.usage({ prefix: 'photos/' });
      const first = partBytes({ name: 'file', filename: 'a.png', type: 'image/png', data: png(2000) });
      const second = partBytes({ name: 'file', filename: 'b.png', type: 'image/png', data: png(100_000) }).subarray(0, 50_000);
      const settled = watch.settled;
      const start = watch.bytesRead;
      const head = `POST /api/uploads?template=photos HTTP/1.1\r\nContent-Type: multipart/form-data; boundary=${BOUNDARY}`;
      await hangUpAfter(head, 500_000, Buffer.concat([first, second]), () => watch.settled > settled && watch.bytesRead - start > first.length);
      assert.deepEqual(await storage.usage({ prefix: 'photos/' }), objectsBefore, 'the first file was undone');
      assert.deepEqual(await snapshot(storage, 'photos/existing.png'), before);
    });

    if (opts.signingSecret === undefined) return;

    /** A signed link for `key` on this server (links are checked by path and query only). */
    async function signed(key: string, method: 'PUT' | 'POST', contentType = 'image/png'): Promise<string> {
      const link = method === 'PUT' ? (await storage.signedUrl(key, { method, contentType })).url : (await storage.presignPost(key, { contentType })).url;
      const url = new URL(link);
      return `${url.pathname}${url.search}`;
    }

    it('/files PUT: a client that disconnects mid-body', async () => {
      const key = 'keep/signed-put.png';
      const before = await existing(key);
      const start = watch.bytesRead;
      await hangUpAfter(`PUT ${await signed(key, 'PUT')} HTTP/1.1\r\nContent-Type: image/png`, 1_000_000, randomBytes(200_000), () => watch.bytesRead - start >= 200_000);
      assert.deepEqual(await snapshot(storage, key), before);
    });

    const file = (data: Buffer): Part => ({ name: 'file', filename: 'new.png', type: 'image/png', data });
    const typeField: Part = { name: 'Content-Type', value: 'image/png' };

    for (const [label, parts, status, code] of [
      ['a form with two files', [typeField, file(randomBytes(5000)), file(randomBytes(10))], 400, 'E_TOO_MANY_FILES'],
      ['a form with a field after the file', [typeField, file(randomBytes(5000)), { name: 'note', value: 'after' }], 400, 'E_INVALID_ARGUMENT'],
    ] as const) {
      it(`/files POST: ${label} is refused`, async () => {
        const key = `keep/${label.replaceAll(' ', '-')}.png`;
        const before = await existing(key);
        const res = await fetch(`${base}${await signed(key, 'POST')}`, { method: 'POST', body: formBody([...parts]), headers: { 'content-type': `multipart/form-data; boundary=${BOUNDARY}` } });
        assert.equal(res.status, status);
        assert.equal(((await res.json()) as { error: { code: string } }).error.code, code);
        assert.deepEqual(await snapshot(storage, key), before);
      });
    }

    it('/files POST: a client that disconnects right after the file part', async () => {
      const key = 'keep/form-hang-up.png';
      const before = await existing(key);
      const data = randomBytes(5000);
      // The file part, then the start of the next boundary: the parser knows the file ended.
      const sent = Buffer.concat([partBytes(typeField), partBytes(file(data)), Buffer.from(`--${BOUNDARY}`)]);
      const start = watch.bytesRead;
      const settled = watch.settled;
      const head = `POST ${await signed(key, 'POST')} HTTP/1.1\r\nContent-Type: multipart/form-data; boundary=${BOUNDARY}`;
      await hangUpAfter(head, sent.length + 1000, sent, async () => {
        if (watch.bytesRead - start < data.length) return false;
        // Give a put that (wrongly) commits as soon as the file ends the chance to do so.
        for (let i = 0; i < 15 && watch.settled === settled; i++) await new Promise((r) => setTimeout(r, 20));
        return true;
      });
      assert.deepEqual(await snapshot(storage, key), before);
    });
  });
}
