/** `storage.publicUrl(key)`: a key under the configured public base, each segment percent-encoded once. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createStorage, createStorageFromEnv, StorageError } from '../../src/index.js';

function throwsCode(fn: () => unknown, code: string, mentions: string): void {
  assert.throws(fn, (e: unknown) => e instanceof StorageError && e.code === code && e.message.includes(mentions));
}

describe('publicUrl', () => {
  it('joins the base and the key, encoding each segment and nothing else', () => {
    const storage = createStorage({ driver: 'memory', publicBaseUrl: 'https://cdn.example.com/media' });
    assert.equal(storage.publicUrl('user_photos/42/a.jpg'), 'https://cdn.example.com/media/user_photos/42/a.jpg');
    assert.equal(storage.publicUrl('docs/a b#1?x=%&y.pdf'), 'https://cdn.example.com/media/docs/a%20b%231%3Fx%3D%25%26y.pdf');
    assert.equal(storage.publicUrl('фото/ключ.txt'), 'https://cdn.example.com/media/%D1%84%D0%BE%D1%82%D0%BE/%D0%BA%D0%BB%D1%8E%D1%87.txt');
    // Keys are normalized first (NFC), as everywhere else.
    assert.equal(storage.publicUrl('jose\u0301.png'), storage.publicUrl('jos\u00e9.png'));
    // A trailing slash on the base makes no difference.
    assert.equal(createStorage({ driver: 'memory', publicBaseUrl: 'https://cdn.example.com/media/' }).publicUrl('a.txt'), 'https://cdn.example.com/media/a.txt');
    assert.equal(createStorage({ driver: 'memory', publicBaseUrl: 'http://127.0.0.1:8080/api/objects' }).publicUrl('public/a.txt'), 'http://127.0.0.1:8080/api/objects/public/a.txt');
  });

  it('says how to configure a base when none is, and refuses bad keys and bases', () => {
    throwsCode(() => createStorage({ driver: 'memory' }).publicUrl('a.txt'), 'E_CONFIG_INVALID', 'STORAGE_PUBLIC_BASE_URL');
    const storage = createStorage({ driver: 'memory', publicBaseUrl: 'https://cdn.example.com/' });
    throwsCode(() => storage.publicUrl('a/../b'), 'E_INVALID_KEY', '..');
    throwsCode(() => createStorage({ driver: 'memory', publicBaseUrl: 'ftp://cdn.example.com/' }), 'E_CONFIG_INVALID', 'publicBaseUrl must be an http');
    throwsCode(() => createStorage({ driver: 'memory', publicBaseUrl: 'https://cdn.example.com/?token=1' }), 'E_CONFIG_INVALID', 'publicBaseUrl must not have a query');
  });

  it('reads STORAGE_PUBLIC_BASE_URL from the environment', () => {
    const storage = createStorageFromEnv({ STORAGE_BACKEND: 'memory', STORAGE_PUBLIC_BASE_URL: 'https://bucket.s3.example.com/site' });
    assert.equal(storage.publicUrl('index.html'), 'https://bucket.s3.example.com/site/index.html');
    throwsCode(() => createStorageFromEnv({ STORAGE_BACKEND: 'memory', STORAGE_PUBLIC_BASE_URL: 'not a url' }), 'E_CONFIG_INVALID', 'STORAGE_PUBLIC_BASE_URL');
  });
});
