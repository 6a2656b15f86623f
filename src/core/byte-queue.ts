/**
 * A queue of byte chunks from which exact sizes are cut: what turns a body's chunks of
 * any size into parts of the sizes a backend wants (S3 parts, session pieces).
 */

/** Chunks in arrival order; `take` cuts bytes off the front. */
export class ByteQueue {
  readonly #chunks: Buffer[] = [];
  #length = 0;

  /** Bytes queued. */
  get length(): number {
    return this.#length;
  }

  /** Queues a chunk (not copied: the caller must not change it afterwards). */
  push(chunk: Uint8Array): void {
    if (chunk.byteLength === 0) return;
    this.#chunks.push(Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength));
    this.#length += chunk.byteLength;
  }

  /**
   * The first `size` bytes (at most `length`), removed from the queue: a view of the first
   * chunk when it holds them all, else one new Buffer they are copied into.
   */
  take(size: number): Buffer {
    const wanted = Math.min(size, this.#length);
    if (wanted === 0) return Buffer.alloc(0);
    const first = this.#chunks[0] as Buffer;
    let out: Buffer;
    if (first.length >= wanted) {
      out = first.subarray(0, wanted);
      if (first.length === wanted) this.#chunks.shift();
      else this.#chunks[0] = first.subarray(wanted);
    } else {
      out = Buffer.allocUnsafe(wanted);
      for (let filled = 0; filled < wanted; ) {
        const piece = this.#chunks[0] as Buffer;
        const used = Math.min(piece.length, wanted - filled);
        piece.copy(out, filled, 0, used);
        filled += used;
        if (used === piece.length) this.#chunks.shift();
        else this.#chunks[0] = piece.subarray(used);
      }
    }
    this.#length -= wanted;
    return out;
  }
}
