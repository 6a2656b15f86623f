/**
 * Presigned URLs and POST forms. When the service reaches S3 by an internal name,
 * `publicUrl` names the host clients use; since SigV4 signs the host, a second client
 * configured with that endpoint does the signing (it never sends a request).
 */
import type { S3Client } from '@aws-sdk/client-s3';
import type { createPresignedPost } from '@aws-sdk/s3-presigned-post';
import { StorageError } from '../../core/errors.js';
import { attachmentDisposition } from '../../core/objects.js';
import type { DriverPresignPostOptions, DriverSignedUrlOptions } from '../../core/contract.js';
import type { PresignedPost, SignedUrl } from '../../core/types.js';
import { createSigningClient } from './client.js';
import type { ResolvedS3Options } from './options.js';
import { presignedPost, requestPresigner, s3 } from './sdk.js';

/** Signs requests for one driver. */
export class Presigner {
  readonly #o: ResolvedS3Options;
  readonly #client: S3Client;
  /** Whether #client is the presigner's own (for `publicUrl`), to be destroyed with it. */
  readonly #ownClient: boolean;

  constructor(o: ResolvedS3Options, client: S3Client) {
    this.#o = o;
    this.#ownClient = o.publicUrl !== undefined;
    this.#client = o.publicUrl ? createSigningClient(o, o.publicUrl.origin) : client;
  }

  /** Releases the presigner's own client, if it has one. */
  close(): void {
    if (this.#ownClient) this.#client.destroy();
  }

  /** A presigned GET (with Content-Disposition and Content-Type overrides) or PUT (bound to type and exact length). */
  async signedUrl(s3Key: string, opts: DriverSignedUrlOptions): Promise<SignedUrl> {
    const expiresAt = new Date(Date.now() + opts.expiresIn * 1000);
    if (opts.method === 'GET') {
      const command = new (s3().GetObjectCommand)({
        Bucket: this.#o.bucket,
        Key: s3Key,
        ResponseContentDisposition: opts.download === undefined ? undefined : attachmentDisposition(opts.download),
        ResponseContentType: opts.responseContentType,
      });
      return { url: await requestPresigner().getSignedUrl(this.#client, command, { expiresIn: opts.expiresIn }), method: 'GET', headers: {}, expiresAt };
    }
    if (opts.maxSize !== undefined) {
      throw new StorageError(
        'E_UNSUPPORTED',
        'S3 presigned PUT URLs cannot limit the size to a maximum: pass contentLength for an exact size, or use presignPost for a size range',
      );
    }
    const command = new (s3().PutObjectCommand)({ Bucket: this.#o.bucket, Key: s3Key, ContentType: opts.contentType, ContentLength: opts.contentLength });
    const signed = new Set<string>();
    const headers: Record<string, string> = {};
    if (opts.contentType !== undefined) {
      signed.add('content-type');
      headers['content-type'] = opts.contentType;
    }
    if (opts.contentLength !== undefined) {
      signed.add('content-length');
      headers['content-length'] = String(opts.contentLength);
    }
    const url = await requestPresigner().getSignedUrl(this.#client, command, { expiresIn: opts.expiresIn, signableHeaders: signed });
    return { url, method: 'PUT', headers, expiresAt };
  }

  /** A POST policy with a content-length-range and a Content-Type condition; `opts` were validated by Storage. */
  async post(s3Key: string, opts: DriverPresignPostOptions): Promise<PresignedPost> {
    const { expiresIn, maxSize } = opts;
    const conditions: NonNullable<Parameters<typeof createPresignedPost>[1]['Conditions']> = [];
    const fields: Record<string, string> = {};
    if (maxSize !== undefined) conditions.push(['content-length-range', 0, maxSize]);
    if (opts.contentType !== undefined) {
      conditions.push(['eq', '$Content-Type', opts.contentType]);
      fields['Content-Type'] = opts.contentType;
    }
    const post = await presignedPost().createPresignedPost(this.#client, { Bucket: this.#o.bucket, Key: s3Key, Conditions: conditions, Fields: fields, Expires: expiresIn });
    return { url: post.url, fields: post.fields, expiresAt: new Date(Date.now() + expiresIn * 1000) };
  }
}
