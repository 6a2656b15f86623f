/** Unit tests for environment configuration and the factories. */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { createStorage, createStorageFromEnv, parseStorageEnv, StorageError } from '../../src/index.js';
import { booleanVariable, parseStorageUrl } from '../../src/core/config.js';

function configError(fn: () => unknown, ...mentions: string[]): void {
  assert.throws(fn, (e: unknown) => e instanceof StorageError && e.code === 'E_CONFIG_INVALID' && mentions.every((m) => e.message.includes(m)));
}

describe('parseStorageEnv', () => {
  it('defaults to the local backend in ./uploads', () => {
    assert.deepEqual(parseStorageEnv({}), { backend: 'local', local: { path: './uploads', fsync: true, readIo: 'sync' }, s3: {}, publicUrl: undefined, signingSecret: undefined, images: {} });
  });

  it('takes the backend and its settings from STORAGE_URL, overridden by single variables', () => {
    assert.equal(parseStorageEnv({ STORAGE_URL: 'local:/srv/media' }).local.path, '/srv/media');
    const c = parseStorageEnv({ STORAGE_URL: 's3://media-bucket/app', STORAGE_S3_PREFIX: 'other', STORAGE_S3_REGION: 'eu-west-1' });
    assert.equal(c.backend, 's3');
    assert.deepEqual(c.s3, { bucket: 'media-bucket', prefix: 'other', region: 'eu-west-1' });
  });

  it('never echoes a STORAGE_URL, which may hold credentials', () => {
    assert.throws(
      () => parseStorageEnv({ STORAGE_URL: 'ftp://KEY:SECRET@host:1/b', STORAGE_S3_SECRET_KEY: 'hunter2' }),
      (err: unknown) => err instanceof StorageError && /STORAGE_URL/.test(err.message) && !err.message.includes('SECRET@') && !err.message.includes('hunter2'),
    );
  });

  it('parses every boolean setting with one parser: true/false, 1/0, yes/no, on/off, any case', () => {
    const words: [string, boolean][] = [['true', true], ['FALSE', false], ['1', true], ['0', false], ['Yes', true], ['no', false], ['ON', true], ['off', false]];
    for (const [word, value] of words) {
      assert.equal(parseStorageEnv({ STORAGE_LOCAL_FSYNC: word }).local.fsync, value, `STORAGE_LOCAL_FSYNC=${word}`);
      assert.equal(parseStorageEnv({ STORAGE_URL: 's3://b', STORAGE_S3_FORCE_PATH_STYLE: word }).s3.forcePathStyle, value, `STORAGE_S3_FORCE_PATH_STYLE=${word}`);
      assert.equal(parseStorageEnv({ STORAGE_FALLBACK_URL: 'memory:', STORAGE_FALLBACK_COPY_ON_READ: word }).fallback?.copyOnRead, value);
      assert.equal(parseStorageUrl(`s3://KEY:SECRET@127.0.0.1:9000/b?pathStyle=${word}`).s3?.forcePathStyle, value);
      assert.equal(booleanVariable({ STOWAGE_ACCESS_LOG: word }, 'STOWAGE_ACCESS_LOG', !value), value);
    }
    const help = 'must be true/false, 1/0, yes/no or on/off';
    for (const name of ['STORAGE_LOCAL_FSYNC', 'STORAGE_S3_FORCE_PATH_STYLE', 'STORAGE_FALLBACK_COPY_ON_READ']) {
      configError(() => parseStorageEnv({ STORAGE_FALLBACK_URL: 'memory:', [name]: 'sure' }), `${name} ${help} (got "sure")`);
    }
    configError(() => parseStorageUrl('s3://KEY:SECRET@127.0.0.1:9000/b?pathStyle=maybe'), `pathStyle ${help}`);
    configError(() => booleanVariable({ STOWAGE_ALLOW_UNAUTHENTICATED: 'sure' }, 'STOWAGE_ALLOW_UNAUTHENTICATED', false), `STOWAGE_ALLOW_UNAUTHENTICATED ${help} (got "sure")`);
    assert.equal(booleanVariable({}, 'STOWAGE_ACCESS_LOG', true), true);
    assert.equal(booleanVariable({ STOWAGE_ACCESS_LOG: '' }, 'STOWAGE_ACCESS_LOG', true), true);
  });

  it('treats empty variables as unset', () => {
    assert.equal(parseStorageEnv({ STORAGE_BACKEND: '', STORAGE_PUBLIC_URL: '' }).backend, 'local');
  });

  it('reads every variable', () => {
    const c = parseStorageEnv({ STORAGE_BACKEND: 'memory', STORAGE_LOCAL_PATH: '/srv/files', STORAGE_LOCAL_FSYNC: 'false', STORAGE_LOCAL_READ_IO: 'async', STORAGE_LOCAL_CACHE_MB: '8', STORAGE_PUBLIC_URL: 'https://cdn.example.com', STORAGE_SIGNING_SECRET: 's'.repeat(32), STOWAGE_IMAGE_VARIANTS: '{"card":{"width":300}}', STOWAGE_IMAGE_MAX_PIXELS: '1000000', STOWAGE_IMAGE_MAX_INPUT_BYTES: '2000000', STOWAGE_IMAGE_ALLOW_SVG: 'yes', STOWAGE_IMAGE_CONCURRENCY: '3', STOWAGE_IMAGE_QUEUE: '0', STOWAGE_IMAGE_CACHE_MB: '4' });
    assert.deepEqual(c, {
      backend: 'memory', local: { path: '/srv/files', fsync: false, readIo: 'async', cacheBytes: 8 * 1024 * 1024 }, s3: {}, publicUrl: 'https://cdn.example.com', signingSecret: 's'.repeat(32),
      images: { variants: '{"card":{"width":300}}', maxPixels: 1_000_000, maxInputBytes: 2_000_000, allowSvg: true, concurrency: 3, queue: 0, cacheBytes: 4 * 1024 * 1024 },
    });
    assert.equal(parseStorageEnv({ STOWAGE_IMAGES: 'false' }).images, false);
    configError(() => parseStorageEnv({ STOWAGE_IMAGE_VARIANTS: '{"thumb":{"fit":"stretch","width":9}}' }), 'STOWAGE_IMAGE_VARIANTS', 'fit must be one of cover, contain, fill, inside, outside (got "stretch")');
    configError(() => parseStorageEnv({ STOWAGE_IMAGE_QUEUE: '-1' }), 'STOWAGE_IMAGE_QUEUE', '0 or more');
  });

  it('names the variable and what is allowed', () => {
    configError(() => parseStorageEnv({ STORAGE_BACKEND: 'dropbox' }), 'STORAGE_BACKEND', 'local, memory, s3', '"dropbox"');
    configError(() => parseStorageEnv({ STORAGE_BACKEND: 'memory', STORAGE_URL: 'local:./x' }), 'STORAGE_BACKEND is memory but STORAGE_URL names the local backend');
    configError(() => parseStorageEnv({ STORAGE_S3_MAX_SOCKETS: 'many' }), 'STORAGE_S3_MAX_SOCKETS');
    configError(() => parseStorageEnv({ STORAGE_PUBLIC_URL: 'ftp://x' }), 'STORAGE_PUBLIC_URL', 'http');
    configError(() => parseStorageEnv({ STORAGE_LOCAL_FSYNC: 'maybe' }), 'STORAGE_LOCAL_FSYNC', 'true/false, 1/0, yes/no or on/off');
    configError(() => parseStorageEnv({ STORAGE_LOCAL_READ_IO: 'threads' }), 'STORAGE_LOCAL_READ_IO', 'sync or async');
    configError(() => parseStorageEnv({ STORAGE_LOCAL_CACHE_MB: 'lots' }), 'STORAGE_LOCAL_CACHE_MB', 'number');
    configError(() => parseStorageEnv({ STORAGE_LOCAL_CACHE_MB: '-1' }), 'STORAGE_LOCAL_CACHE_MB', '0 (off) or more');
    configError(() => parseStorageEnv({ STORAGE_LOCAL_CACHE_MB: '1.5' }), 'STORAGE_LOCAL_CACHE_MB', 'whole number');
  });

  it('never echoes a secret in the error', () => {
    try {
      parseStorageEnv({ STORAGE_SIGNING_SECRET: 'short-secret' });
      assert.fail('expected an error');
    } catch (err) {
      assert.ok(err instanceof StorageError);
      assert.match(err.message, /STORAGE_SIGNING_SECRET must be at least 16 characters/);
      assert.ok(!err.message.includes('short-secret'));
    }
  });
});

describe('factories', () => {
  it('creates an fs storage from the environment that works end to end', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'stowage-env-'));
    try {
      const storage = createStorageFromEnv({ STORAGE_LOCAL_PATH: dir, STORAGE_PUBLIC_URL: 'http://localhost:8080', STORAGE_SIGNING_SECRET: 'x'.repeat(20) });
      assert.equal(storage.backend, 'fs');
      await storage.put('k.txt', 'v');
      assert.equal((await storage.health()).detail.root, dir);
      assert.ok((await storage.signedUrl('k.txt', { method: 'GET', expiresIn: 60 })).url.startsWith('http://localhost:8080/files/k.txt?'));
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('creates a memory storage and accepts a Driver instance', () => {
    const memory = createStorageFromEnv({ STORAGE_BACKEND: 'memory' });
    assert.equal(memory.backend, 'memory');
    assert.equal(createStorage({ driver: memory.driver }).backend, 'memory');
  });

  it('rejects an unknown driver and bad signing options', () => {
    configError(() => createStorage({ driver: 'ftp' as 'fs' }), 'unknown driver', '"ftp"');
    configError(() => createStorage({ driver: 'memory', baseUrl: 'http://x', signingSecret: 'short' }), 'signingSecret', '16');
    configError(() => createStorage({ driver: 'memory', baseUrl: 'nope', signingSecret: 'x'.repeat(16) }), 'baseUrl');
  });
});
