/**
 * A lean HTTP/1.1 client for benchmarks whose client shares the machine's cores with the
 * service it measures: GETs over kept-alive sockets, each response read whole by its
 * Content-Length. node:http's client costs about half a millisecond of CPU per request
 * here, which a benchmark of a 13 ms render would otherwise charge to the service; this
 * one costs a few tens of microseconds. Responses must carry Content-Length (no chunked
 * bodies): the service answers every GET these benchmarks make with one.
 */
import { connect, type Socket } from 'node:net';

/** A response: its status, raw header block and body. */
export interface RawResponse {
  status: number;
  /** The header lines as sent, lower-cased, for simple matching (`/content-type: image\/jpeg/`). */
  head: string;
  body: Buffer;
}

/** One kept-alive connection, one request at a time. */
export class RawConnection {
  readonly #socket: Socket;
  readonly #host: string;
  #buffered: Buffer = Buffer.alloc(0);
  #waiting: { resolve: (res: RawResponse) => void; reject: (err: Error) => void } | undefined;

  private constructor(socket: Socket, host: string) {
    this.#socket = socket;
    this.#host = host;
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => {
      this.#buffered = this.#buffered.length === 0 ? chunk : Buffer.concat([this.#buffered, chunk]);
      this.#parse();
    });
    const fail = (err: Error) => {
      this.#waiting?.reject(err);
      this.#waiting = undefined;
    };
    socket.on('error', fail);
    socket.on('close', () => fail(new Error('the connection closed before the response ended')));
  }

  /** Connects to `base` (`http://host:port`). */
  static open(base: string): Promise<RawConnection> {
    const url = new URL(base);
    return new Promise((resolve, reject) => {
      const socket = connect(Number(url.port), url.hostname, () => resolve(new RawConnection(socket, url.host)));
      socket.once('error', reject);
    });
  }

  /** GETs `path` and resolves the whole response. */
  get(path: string): Promise<RawResponse> {
    if (this.#waiting) throw new Error('one request at a time on a connection');
    return new Promise((resolve, reject) => {
      this.#waiting = { resolve, reject };
      this.#socket.write(`GET ${path} HTTP/1.1\r\nHost: ${this.#host}\r\n\r\n`);
    });
  }

  #parse(): void {
    const end = this.#buffered.indexOf('\r\n\r\n');
    if (end < 0 || !this.#waiting) return;
    const head = this.#buffered.subarray(0, end).toString('latin1').toLowerCase();
    const length = Number(/\r\ncontent-length: *(\d+)/.exec(head)?.[1] ?? Number.NaN);
    if (Number.isNaN(length)) {
      this.#waiting.reject(new Error(`a response without Content-Length: ${head}`));
      this.#waiting = undefined;
      return;
    }
    if (this.#buffered.length < end + 4 + length) return;
    const body = this.#buffered.subarray(end + 4, end + 4 + length);
    this.#buffered = this.#buffered.subarray(end + 4 + length);
    const waiting = this.#waiting;
    this.#waiting = undefined;
    waiting.resolve({ status: Number(head.slice(9, 12)), head, body });
  }

  close(): void {
    this.#socket.destroy();
  }
}

/**
 * GETs every path, `connections` at a time over that many kept-alive connections, and
 * passes each response to `check` (which throws for a wrong one).
 */
export async function getAll(base: string, paths: readonly string[], connections: number, check: (path: string, res: RawResponse) => void): Promise<void> {
  const opened = await Promise.all(Array.from({ length: connections }, () => RawConnection.open(base)));
  let next = 0;
  try {
    await Promise.all(
      opened.map(async (connection) => {
        while (next < paths.length) {
          const path = paths[next++] as string;
          check(path, await connection.get(path));
        }
      }),
    );
  } finally {
    for (const connection of opened) connection.close();
  }
}
