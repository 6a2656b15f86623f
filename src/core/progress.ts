/**
 * Progress of a transfer for the `onProgress` options of put, putFile, get, getStream
 * and copyFrom: `{ bytes, total? }` as bytes move, then a last call with all of them.
 * Writes are counted as the body is read (in PutBody), reads as the driver's stream
 * produces chunks, which backpressure keeps in step with the consumer.
 */
import type { Readable } from 'node:stream';

/** How far a transfer has come: bytes moved so far, and the total when it is known. */
export interface TransferProgress {
  bytes: number;
  /** The size of the whole transfer, when known in advance (buffers, files, downloads). */
  total?: number;
}

/** Called as a transfer moves, and a last time once it is complete (`bytes === total` then). */
export type OnProgress = (progress: TransferProgress) => void;

/** The last call of a write: the stored object's size is everything that moved. */
export function reportDone(onProgress: OnProgress | undefined, size: number): void {
  onProgress?.({ bytes: size, total: size });
}

/**
 * Counts the chunks `stream` produces, by watching its `push`: no stream in between,
 * which would cost a copy of every chunk's bookkeeping (a PassThrough cost a fifth of a
 * download's throughput here). Its `end`, once the consumer has read everything, is
 * the last call.
 */
export function countPushes(stream: Readable, total: number, onProgress: OnProgress): Readable {
  // A socket's stream may hold bytes it took before we watched it (an HTTP body's first chunk).
  let bytes = stream.readableLength;
  const push = stream.push.bind(stream);
  stream.push = (chunk: unknown, encoding?: BufferEncoding) => {
    if (chunk instanceof Uint8Array || typeof chunk === 'string') {
      bytes += typeof chunk === 'string' ? Buffer.byteLength(chunk, encoding) : chunk.byteLength;
      onProgress({ bytes, total });
    }
    return push(chunk, encoding);
  };
  stream.once('end', () => onProgress({ bytes, total }));
  return stream;
}
