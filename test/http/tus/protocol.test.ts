/** The tus 1.0 headers, as the specification words them: what is accepted, and what is refused with a 400 or 412 naming the header. */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { describe, it } from 'node:test';
import { isStorageError, type ErrorCode } from '../../../src/index.js';
import {
  checkResumable,
  effectiveMethod,
  formatExpires,
  formatMetadata,
  parseBytes,
  parseChecksum,
  parseConcat,
  parseMetadata,
  parseUploadLength,
  TUS_VERSION,
} from '../../../src/http/tus/protocol.js';

function refused(run: () => unknown, header: string, pattern: RegExp, code: ErrorCode = 'E_INVALID_ARGUMENT'): void {
  assert.throws(run, (err: unknown) => {
    assert.ok(isStorageError(err, code), `expected ${code}, got ${String(err)}`);
    assert.equal((err.details as { header?: string }).header, header);
    assert.match(err.message, pattern);
    return true;
  });
}

const b64 = (text: string) => Buffer.from(text).toString('base64');
const ID = /^[0-9a-f]{32}$/;
const id = (c: string) => c.repeat(32);

describe('tus protocol headers', () => {
  it('takes Tus-Resumable 1.0.0 only, refusing others with 412 and the version served', () => {
    checkResumable('1.0.0');
    refused(() => checkResumable('0.2.2'), 'Tus-Resumable', /speaks tus 1\.0\.0, and the request has Tus-Resumable "0\.2\.2"/, 'E_PRECONDITION_FAILED');
    refused(() => checkResumable(undefined), 'Tus-Resumable', /no Tus-Resumable header/, 'E_PRECONDITION_FAILED');
    assert.equal(TUS_VERSION, '1.0.0');
  });

  it('tunnels PATCH and DELETE through POST with X-HTTP-Method-Override, and nothing else', () => {
    assert.equal(effectiveMethod('post', undefined), 'POST');
    assert.equal(effectiveMethod('POST', 'patch'), 'PATCH');
    assert.equal(effectiveMethod('POST', 'DELETE'), 'DELETE');
    refused(() => effectiveMethod('POST', 'PUT'), 'X-HTTP-Method-Override', /must be PATCH or DELETE/);
    refused(() => effectiveMethod('GET', 'PATCH'), 'X-HTTP-Method-Override', /only a POST may carry it/);
  });

  it('needs exactly one of Upload-Length and Upload-Defer-Length: 1 at creation', () => {
    assert.deepEqual(parseUploadLength('0', undefined), { size: 0 });
    assert.deepEqual(parseUploadLength('52428800', undefined), { size: 52_428_800 });
    assert.deepEqual(parseUploadLength(undefined, '1'), { deferred: true });
    refused(() => parseUploadLength('10', '1'), 'Upload-Length', /either Upload-Length or Upload-Defer-Length, not both/);
    refused(() => parseUploadLength(undefined, undefined), 'Upload-Length', /needs Upload-Length, or Upload-Defer-Length: 1/);
    refused(() => parseUploadLength(undefined, '0'), 'Upload-Defer-Length', /must be 1/);
    for (const bad of ['-1', '1e3', '0x10', ' 10', '10.0', '', '99999999999999999']) refused(() => parseUploadLength(bad, undefined), 'Upload-Length', /whole number of bytes/);
    assert.equal(parseBytes('Upload-Offset', '1024'), 1024);
    refused(() => parseBytes('Upload-Offset', '+5'), 'Upload-Offset', /whole number/);
  });

  it('reads Upload-Metadata pairs, with empty values, and writes them back', () => {
    const header = `filename ${b64('photo of us — 2026.jpg')},filetype ${b64('image/jpeg')},is_confidential`;
    const pairs = parseMetadata(header);
    assert.deepEqual([...pairs], [['filename', 'photo of us — 2026.jpg'], ['filetype', 'image/jpeg'], ['is_confidential', '']]);
    assert.deepEqual([...parseMetadata(formatMetadata(pairs))], [...pairs]);
    assert.equal(parseMetadata(undefined).size, 0);
    assert.equal(parseMetadata(`a ${b64('x')}, b ${b64('y')}`).get('b'), 'y');
  });

  it('refuses malformed Upload-Metadata, naming the key', () => {
    refused(() => parseMetadata(`name ${b64('a')},name ${b64('b')}`), 'Upload-Metadata', /"name" is given twice/);
    refused(() => parseMetadata('name not*base64'), 'Upload-Metadata', /value of "name" is not Base64/);
    refused(() => parseMetadata('name YQ'), 'Upload-Metadata', /not Base64/);
    refused(() => parseMetadata(`name ${b64('a')} extra`), 'Upload-Metadata', /a key, a space and a Base64 value/);
    refused(() => parseMetadata(`,name ${b64('a')}`), 'Upload-Metadata', /a key, a space/);
    refused(() => parseMetadata(`näme ${b64('a')}`), 'Upload-Metadata', /printable ASCII/);
    refused(() => parseMetadata(`name ${Buffer.from([0xff, 0xfe]).toString('base64')}`), 'Upload-Metadata', /not UTF-8 text/);
    refused(() => parseMetadata(`name ${b64('x'.repeat(4000))}`), 'Upload-Metadata', /at most 4096 are kept/);
  });

  it('reads Upload-Checksum for sha1, sha256, sha512 and md5, with a digest of the right length', () => {
    const body = Buffer.from('hello tus');
    for (const algorithm of ['sha1', 'sha256', 'sha512', 'md5'] as const) {
      const digest = createHash(algorithm).update(body).digest();
      assert.deepEqual(parseChecksum(`${algorithm} ${digest.toString('base64')}`), { algorithm, digest });
    }
    assert.equal(parseChecksum(undefined), undefined);
    refused(() => parseChecksum(`crc32 ${b64('abcd')}`), 'Upload-Checksum', /must be one of sha1, sha256, sha512, md5 \(got "crc32"\)/);
    refused(() => parseChecksum(`SHA1 ${createHash('sha1').digest('base64')}`), 'Upload-Checksum', /got "SHA1"/);
    refused(() => parseChecksum(`sha256 ${createHash('sha1').digest('base64')}`), 'Upload-Checksum', /a sha256 digest is 32 bytes/);
    refused(() => parseChecksum(`sha1 ${createHash('sha1').digest('hex')}`), 'Upload-Checksum', /20 bytes in Base64/);
    refused(() => parseChecksum('sha1'), 'Upload-Checksum', /an algorithm, a space and a Base64 digest/);
  });

  it('reads Upload-Concat: partial, and final with this server’s upload URLs in order', () => {
    assert.deepEqual(parseConcat(undefined, '/api/tus/', ID), undefined);
    assert.deepEqual(parseConcat('partial', '/api/tus/', ID), { kind: 'partial' });
    const final = parseConcat(`final;https://files.example.com/api/tus/${id('b')} /api/tus/${id('a')}`, '/api/tus/', ID);
    assert.deepEqual(final, { kind: 'final', ids: [id('b'), id('a')] });
    refused(() => parseConcat('final;', '/api/tus/', ID), 'Upload-Concat', /at least one partial upload/);
    refused(() => parseConcat('whole', '/api/tus/', ID), 'Upload-Concat', /"partial" or "final;"/);
    refused(() => parseConcat(`final;/api/objects/${id('a')}`, '/api/tus/', ID), 'Upload-Concat', /not an upload of this server/);
    refused(() => parseConcat('final;/api/tus/../secret', '/api/tus/', ID), 'Upload-Concat', /not an upload of this server/);
    refused(() => parseConcat(`final;/api/tus/${id('a')} /api/tus/${id('a')}`, '/api/tus/', ID), 'Upload-Concat', /named twice/);
  });

  it('writes Upload-Expires as an RFC 7231 date', () => {
    assert.equal(formatExpires(new Date(Date.UTC(2026, 11, 7, 4, 5, 6))), 'Mon, 07 Dec 2026 04:05:06 GMT');
  });
});
