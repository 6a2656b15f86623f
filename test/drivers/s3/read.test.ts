/**
 * The S3 read path against answers the test RGW never gives: a service that ignores
 * If-None-Match on GET (the ETag it sends back still decides), and one that ignores the
 * Range header. The driver's calls are played by a stub client.
 */
import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { describe, it } from 'node:test';
import type { S3Client } from '@aws-sdk/client-s3';
import { readObject, type S3ReadTarget } from '../../../src/drivers/s3/read.js';
import { rejectsWith } from '../../conformance/harness.js';

/** A target whose GetObject answers `output` (with a body it records), and whose HEAD must not be needed. */
function answering(output: Record<string, unknown>): { target: S3ReadTarget; body: Readable; sent: unknown[] } {
  const body = Readable.from([Buffer.from('hello')]);
  const sent: unknown[] = [];
  const client = { send: async (command: { input: unknown }) => (sent.push(command.input), { ...output, Body: body }) } as unknown as S3Client;
  const target: S3ReadTarget = {
    call: (_what, fn) => fn(client),
    bucket: 'b-1',
    s3Key: 'p/k',
    stat: () => assert.fail('no HEAD is needed'),
  };
  return { target, body, sent };
}

describe('s3 reads', () => {
  it('answers not modified when the service ignored If-None-Match but sent the same ETag', async () => {
    const { target, body, sent } = answering({ ETag: '"abc"', ContentLength: 5 });
    const result = await readObject(target, 'k', { ifNoneMatch: 'abc' });
    assert.equal(result.notModified, true);
    assert.equal(body.destroyed, true, 'the body it sent anyway is dropped');
    assert.deepEqual(sent, [{ Bucket: 'b-1', Key: 'p/k', Range: undefined, IfNoneMatch: '"abc"' }]);
    const other = await readObject(answering({ ETag: '"abc"', ContentLength: 5 }).target, 'k', { ifNoneMatch: 'xyz' });
    assert.ok(!other.notModified && other.info.size === 5);
  });

  it('refuses an answer that ignored the Range header rather than serve the wrong bytes', async () => {
    const { target, body } = answering({ ETag: '"abc"', ContentLength: 5 });
    await rejectsWith(readObject(target, 'k', { range: { start: 1 } }), 'E_UNAVAILABLE', 'ignored the Range header');
    assert.equal(body.destroyed, true);
  });
});
