/**
 * Download streams whose errors are StorageErrors: a socket that stalls or resets in
 * the middle of a body surfaces as E_TIMEOUT / E_UNAVAILABLE, like any other failure.
 */
import type { Readable } from 'node:stream';
import { s3Error } from './errors.js';

/**
 * Maps the errors `body` is destroyed with, in place. Streams emit the error their
 * `_destroy` hands back, so wrapping it costs nothing per chunk (a PassThrough in
 * between cost a fifth of the download throughput).
 */
export function mapErrors(body: Readable, what: string, key: string): Readable {
  const destroy = body._destroy.bind(body);
  body._destroy = (error, callback) => destroy(error, (err) => callback(err ? s3Error(err, what, key) : err));
  return body;
}
