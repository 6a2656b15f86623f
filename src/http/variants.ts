/**
 * Serving an image variant over HTTP (`?variant=<name>` on `/api/objects/<key>`, and
 * signed links made with a variant): the rendition the request's `Accept` picks, with
 * `Vary: Accept`, a strong ETag (304 on If-None-Match), and `Stowage-Variant-Source`
 * naming the original's SHA-256. A URL that names that digest (`&v=<sha256>`) is cached
 * as immutable, since its bytes can never change; any other URL is revalidated, since
 * the original may be replaced. Only named variants exist: nothing in the URL sets a size.
 */
import type { FastifyReply, FastifyRequest } from 'fastify';
import { isStorageError } from '../core/errors.js';
import type { Storage } from '../core/storage.js';
import type { WriteResult } from '../core/types.js';
import { HttpError } from './catalogue.js';
import { entityTags, setInertHeaders } from './serve.js';

/** How to serve a variant. */
export interface VariantServeOptions {
  /** Only headers (HEAD). */
  head: boolean;
  /** The variant's name. */
  name: string;
  /** The original's SHA-256 the URL names (`v`), when it names one. */
  version?: string;
  /** Shared caches may keep it (the original is publicly readable, or the URL is a signed link). */
  shared: boolean;
}

/** A year: the longest lifetime caches honour, for URLs whose bytes cannot change. */
const IMMUTABLE = 'max-age=31536000, immutable';

/**
 * Sends the variant `opts.name` of the image at `key`. An original that is not an image
 * Stowage renders is 415; one over a limit 413; an unknown variant 400; a full render
 * queue 503 with Retry-After.
 */
export async function sendVariant(storage: Storage<WriteResult>, key: string, request: FastifyRequest, reply: FastifyReply, opts: VariantServeOptions): Promise<FastifyReply> {
  const accept = request.headers.accept;
  const image = await storage.variant(key, opts.name, { accept }).catch((err: unknown) => {
    if (isStorageError(err, 'E_INVALID_ARGUMENT') && err.details?.reason === 'type') throw new HttpError('E_UNSUPPORTED_MEDIA_TYPE', err.publicMessage);
    throw err;
  });
  setInertHeaders(reply, image.etag);
  void reply.header('vary', 'Accept');
  void reply.header('stowage-variant-source', image.source);
  const scope = opts.shared ? 'public' : 'private';
  void reply.header('cache-control', opts.version !== undefined && opts.version === image.source ? `${scope}, ${IMMUTABLE}` : `${scope}, no-cache`);
  void reply.type(image.contentType);
  const header = request.headers['if-none-match'];
  const tags = header === undefined ? [] : entityTags(header);
  if (tags === '*' || tags.includes(image.etag)) return reply.status(304).send();
  void reply.header('content-length', String(image.data.length));
  return reply.status(200).send(opts.head ? undefined : image.data);
}
