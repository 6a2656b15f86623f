/**
 * Download streams whose errors are StorageErrors: a socket that stalls or resets in
 * the middle of a body surfaces as E_TIMEOUT / E_UNAVAILABLE, like any other failure.
 */
import { PassThrough, type Readable } from 'node:stream';
import { s3Error } from './errors.js';

/** Passes `body` through, replacing any error it emits by the mapped StorageError. */
export function mapErrors(body: Readable, what: string, key: string): Readable {
  const out = new PassThrough({ highWaterMark: 1024 * 1024 });
  body.once('error', (err) => out.destroy(s3Error(err, what, key)));
  // A consumer that stops early releases the socket.
  out.once('close', () => {
    if (!body.readableEnded) body.destroy();
  });
  body.pipe(out);
  return out;
}
