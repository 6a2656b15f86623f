/**
 * The AWS SDK packages the S3 driver uses, required when the first S3 driver is made
 * (its client) or first presigns, never by importing Stowage: a program that stores
 * files on disk does not pay for the SDK, and `import { S3Driver } from 'stowage'` is
 * cheap. When a package is missing, making an S3 driver fails with E_CONFIG_INVALID
 * naming it.
 */
import type * as PresignedPost from '@aws-sdk/s3-presigned-post';
import type * as RequestPresigner from '@aws-sdk/s3-request-presigner';
import type * as NodeHttpHandler from '@smithy/node-http-handler';
import type * as ClientS3 from '@aws-sdk/client-s3';
import { lazyModule } from '../../core/lazy.js';

/** `@aws-sdk/client-s3`: the client and its commands. */
export const s3 = lazyModule<typeof ClientS3>('@aws-sdk/client-s3', 'the S3 driver');
/** `@smithy/node-http-handler`: the socket pool and timeouts of the client. */
export const httpHandler = lazyModule<typeof NodeHttpHandler>('@smithy/node-http-handler', 'the S3 driver');
/** `@aws-sdk/s3-request-presigner`: presigned GET and PUT URLs. */
export const requestPresigner = lazyModule<typeof RequestPresigner>('@aws-sdk/s3-request-presigner', 'presigned S3 URLs');
/** `@aws-sdk/s3-presigned-post`: presigned POST policies for browser forms. */
export const presignedPost = lazyModule<typeof PresignedPost>('@aws-sdk/s3-presigned-post', 'presigned S3 form uploads');
