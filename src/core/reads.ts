/**
 * What `Storage.getStream` hands out for a driver's read: the same object, cancellable by
 * the caller's signal, reporting progress, and convertible to a web stream for a fetch
 * `Response`. The stream is still only built when someone asks for it, so a caller that
 * takes `bytes` (the HTTP service, `get`) never builds one.
 */
import { Readable } from 'node:stream';
import { abortedError } from './errors.js';
import { countPushes, type OnProgress } from './progress.js';
import type { ObjectStream } from './types.js';

/** An object opened for reading through Storage. */
export interface ObjectReader extends ObjectStream {
  /**
   * The content as a web `ReadableStream`, e.g. for `new Response(reader.toWeb())` in a
   * fetch handler. Use either this or `stream`, not both: they read the same bytes.
   */
  toWeb(): ReadableStream<Uint8Array>;
}

/** What the caller asked of a read. */
export interface ReadControls {
  signal?: AbortSignal;
  onProgress?: OnProgress;
}

/** Destroys `readable` with E_ABORTED when `signal` fires, and stops listening once it closes. */
function destroyOnAbort(readable: Readable, signal: AbortSignal): Readable {
  const onAbort = () => readable.destroy(abortedError(signal));
  if (signal.aborted) onAbort();
  else {
    signal.addEventListener('abort', onAbort, { once: true });
    readable.once('close', () => signal.removeEventListener('abort', onAbort));
  }
  return readable;
}

/**
 * Wraps a driver's read. A signal that fired while the driver opened the object closes
 * it again and rejects with E_ABORTED; one that fires later destroys the stream with
 * E_ABORTED, closing whatever the driver holds open. `onProgress` sees bytes already in
 * memory at once, and a stream's chunks as they are read, then its end.
 */
export function objectReader(object: ObjectStream, { signal, onProgress }: ReadControls): ObjectReader {
  if (signal?.aborted) {
    if (!object.bytes) object.stream.destroy();
    throw abortedError(signal);
  }
  const total = object.range ? object.range.end - object.range.start + 1 : object.info.size;
  const { bytes } = object;
  if (bytes && onProgress) onProgress({ bytes: bytes.length, total });
  let stream: Readable | undefined;
  const opened = (): Readable => {
    if (stream) return stream;
    stream = object.stream;
    if (!bytes && onProgress) countPushes(stream, total, onProgress);
    if (signal) destroyOnAbort(stream, signal);
    return stream;
  };
  return {
    info: object.info,
    range: object.range,
    bytes,
    release: object.release,
    get stream() {
      return opened();
    },
    toWeb() {
      if (bytes && !stream) {
        // No Node stream needed for bytes in memory: one chunk, and done.
        return new ReadableStream<Uint8Array>({
          start(controller) {
            controller.enqueue(bytes);
            controller.close();
          },
        });
      }
      return Readable.toWeb(opened()) as ReadableStream<Uint8Array>;
    },
  };
}
