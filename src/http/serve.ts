/**
 * Serving an object over HTTP, shared by `/api/objects/<key>` and signed `/files/<key>`
 * links: a single Range gives 206 (an unsatisfiable one 416), If-None-Match gives 304,
 * and ETag, Last-Modified, Content-Type and caching headers come from the stored object.
 * Every object response is inert in a browser: a sandboxing Content-Security-Policy, no
 * type sniffing, and types that could run as a page (HTML, SVG, XML, JavaScript) only
 * as attachments, so an uploaded file never runs script on the service's origin.
 */
import type { OutgoingHttpHeaders, ServerResponse } from 'node:http';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { isActiveContentType } from '../core/active-types.js';
import { readAll } from '../core/body.js';
import { isStorageError } from '../core/errors.js';
import { attachmentDisposition, isBareEtag, normalizeEtag } from '../core/objects.js';
import type { Storage } from '../core/storage.js';
import type { ByteRange, NotModified, ObjectInfo, ObjectStream, WriteResult } from '../core/types.js';
import { sendError } from './catalogue.js';

/** How to serve. */
export interface ServeOptions {
  /** Only headers (HEAD). */
  head: boolean;
  /** Serve as an attachment with this file name. */
  download?: string;
  /** Serve with this Content-Type instead of the stored one. */
  contentType?: string;
}

/**
 * Parses a Range header (RFC 9110). Only one `bytes` range is honoured; anything else
 * (several ranges, other units, bad syntax, a last position before the first) is ignored,
 * and the whole object is served, as RFC 9110 allows. A position too large for a number
 * to hold exactly lies past the end of every object, so it becomes the largest exact one:
 * as a first position it is past the end (416), as a last position or a suffix length it
 * reaches the last byte (206 up to the end, or the whole object).
 */
export function parseRange(header: string | undefined): ByteRange | undefined {
  const m = /^bytes=(\d*)-(\d*)$/.exec(header?.trim() ?? '');
  if (!m) return undefined;
  const [, first = '', last = ''] = m;
  if (first === '' && last === '') return undefined;
  if (first === '') return { suffix: bytePosition(last) };
  if (last === '') return { start: bytePosition(first) };
  // Compared exactly: two huge positions may round to the same number.
  if (BigInt(last) < BigInt(first)) return undefined;
  return { start: bytePosition(first), end: bytePosition(last) };
}

/** A byte position from its digits, at most Number.MAX_SAFE_INTEGER (more than any object holds). */
function bytePosition(digits: string): number {
  return Math.min(Number(digits), Number.MAX_SAFE_INTEGER);
}

/**
 * The ETags an If-None-Match header names, bare (quotes and `W/` removed: it compares
 * weakly), or `*`. A tag no object could have (malformed) is left out: it matches nothing.
 */
export function entityTags(header: string): string[] | '*' {
  const tags = header.split(',').map((tag) => tag.trim());
  if (tags.includes('*')) return '*';
  return tags.map((tag) => normalizeEtag(tag)).filter(isBareEtag);
}

/**
 * The policy of every object response. `sandbox` gives a document an opaque origin with
 * scripts, forms, popups and plugins off, so even a type nobody foresaw cannot act as
 * the service; `default-src 'none'` stops it loading anything. It governs only a
 * response rendered as a document: an app's `<img>`, `<video>` or `<audio>` tags (on any
 * origin) still show the file, and so does a browser's own view of an image.
 */
export const OBJECT_CSP = "default-src 'none'; style-src 'unsafe-inline'; sandbox";

const ATTACHMENT = /^\s*attachment\s*(;|$)/i;

/**
 * The Content-Disposition to serve: the requested download name, else the stored one;
 * a type that could run as a page is always an attachment (named after the key).
 */
function dispositionFor(info: ObjectInfo, contentType: string, opts: ServeOptions): string | undefined {
  const disposition = opts.download !== undefined ? attachmentDisposition(opts.download) : info.contentDisposition;
  if (!isActiveContentType(contentType) || (disposition !== undefined && ATTACHMENT.test(disposition))) return disposition;
  return attachmentDisposition(info.key.slice(info.key.lastIndexOf('/') + 1));
}

/** The headers that keep any object response inert, whatever else is known about the object. */
export function setInertHeaders(reply: FastifyReply, etag: string): void {
  void reply.header('etag', `"${etag}"`);
  // Stored types are never sniffed into something else by the browser.
  void reply.header('x-content-type-options', 'nosniff');
  void reply.header('content-security-policy', OBJECT_CSP);
}

function setObjectHeaders(reply: FastifyReply, info: ObjectInfo, opts: ServeOptions): void {
  const contentType = opts.contentType ?? info.contentType;
  setInertHeaders(reply, info.etag);
  void reply.header('last-modified', info.lastModified.toUTCString());
  void reply.header('accept-ranges', 'bytes');
  if (info.cacheControl) void reply.header('cache-control', info.cacheControl);
  const disposition = dispositionFor(info, contentType, opts);
  if (disposition) void reply.header('content-disposition', disposition);
  void reply.type(contentType);
}

/**
 * A 304 with the object's headers when the backend gave them with its answer (fs,
 * memory, a stat), else with its ETag: S3 answers a matching GET with a bare 304, and a
 * cache keeps the headers it stored for what the 304 leaves out.
 */
function sendNotModified(reply: FastifyReply, answer: NotModified, opts: ServeOptions): FastifyReply {
  if (answer.info) setObjectHeaders(reply, answer.info, opts);
  else setInertHeaders(reply, answer.etag);
  return reply.status(304).send();
}

/**
 * Bodies up to this size are read whole and sent with the headers in one write: a
 * stream costs a write per chunk plus the end, which dominates small responses.
 */
const SMALL_BODY_BYTES = 64 * 1024;

/** The client went away (closed, reset) before the whole body was written: not our failure. */
class ClientGone extends Error {}

/** Writes `chunk` and resolves once the socket has taken it, so its memory may be reused. */
function written(res: ServerResponse, chunk: Buffer): Promise<void> {
  return new Promise((resolve, reject) => {
    // A write pending when the client goes away may never call back: stop on close.
    const onClose = () => reject(new ClientGone());
    res.once('close', onClose);
    res.write(chunk, (err) => {
      res.off('close', onClose);
      if (err) reject(new ClientGone(err.message, { cause: err }));
      else resolve();
    });
  });
}

/**
 * Streams a large body itself rather than through Fastify's pipe, so that each chunk
 * goes back to the driver (ObjectStream.release) once the socket has copied it, and the
 * next read reuses its memory. The answer starts with the first chunk: a backend that
 * fails before it still gets the usual error response. A failure after that can only
 * cut the connection, which the client sees as a body shorter than its Content-Length.
 */
async function streamBody(reply: FastifyReply, object: ObjectStream): Promise<void> {
  const { stream, release } = object;
  const chunks = stream[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
  let next = await chunks.next();
  const res = reply.raw;
  try {
    // Bad header values throw here, before the hijack, so Fastify still answers with an error.
    res.writeHead(reply.statusCode, reply.getHeaders() as OutgoingHttpHeaders);
  } catch (err) {
    stream.destroy();
    throw err;
  }
  reply.hijack();
  try {
    for (; !next.done; next = await chunks.next()) {
      await written(res, next.value);
      release?.(next.value);
    }
    res.end();
  } catch (err) {
    // Closes the stream (and its file), then the connection.
    stream.destroy();
    res.destroy();
    if (!(err instanceof ClientGone)) reply.log.error({ err }, 'the object could not be read to the end; the response was cut short');
  }
}

/**
 * Sends the object (or a range, or 304/416) for `key`. A GET is one read of the
 * storage: If-None-Match with one ETag (what browsers send) goes into it, and a 416
 * takes the size from its error. HEAD, and a list of ETags or `*`, stat first.
 */
export async function sendObject(storage: Storage<WriteResult>, key: string, request: FastifyRequest, reply: FastifyReply, opts: ServeOptions): Promise<FastifyReply> {
  const header = request.headers['if-none-match'];
  const tags = header === undefined ? [] : entityTags(header);
  // One ETag goes into the read; `*` or a list is compared with a stat's.
  const single = Array.isArray(tags) && tags.length === 1 ? tags[0] : undefined;
  if (opts.head || tags === '*' || tags.length > 1) {
    const info = await storage.stat(key);
    if (tags === '*' || tags.includes(info.etag)) return sendNotModified(reply, { notModified: true, etag: info.etag, info }, opts);
    if (opts.head) {
      setObjectHeaders(reply, info, opts);
      void reply.header('content-length', String(info.size));
      return reply.status(200).send();
    }
  }
  const range = parseRange(request.headers.range);
  try {
    const object = await storage.getStream(key, { range, ifNoneMatch: single });
    if (object.notModified) return sendNotModified(reply, object, opts);
    const { info, range: resolved } = object;
    setObjectHeaders(reply, info, opts);
    let length = info.size;
    if (resolved) {
      length = resolved.end - resolved.start + 1;
      void reply.header('content-range', `bytes ${resolved.start}-${resolved.end}/${info.size}`);
      void reply.status(206);
    }
    void reply.header('content-length', String(length));
    if (object.bytes) return reply.send(object.bytes);
    if (length <= SMALL_BODY_BYTES) return reply.send(await readAll(object.stream));
    await streamBody(reply, object);
    return reply;
  } catch (err) {
    if (!isStorageError(err, 'E_RANGE_NOT_SATISFIABLE')) throw err;
    // Every driver says the size (the contract); one of yours that does not gets a 416 without it.
    const size = err.details?.size;
    if (typeof size === 'number') void reply.header('content-range', `bytes */${size}`);
    return sendError(reply, err.code, err.publicMessage, request.id);
  }
}
