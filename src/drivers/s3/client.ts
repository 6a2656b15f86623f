/**
 * The one S3 client of a driver: a keep-alive socket pool, connect and idle timeouts,
 * and the provider's checksum mode. The SDK's own retries are off (maxAttempts 1)
 * because Stowage retries per request, where it knows whether a body can be re-sent.
 */
import type { S3Client } from '@aws-sdk/client-s3';
import type * as Http from 'node:http';
import type * as Https from 'node:https';
import { lazyModule } from '../../core/lazy.js';
import type { ResolvedS3Options } from './options.js';
import { httpHandler, s3 } from './sdk.js';

// Node's HTTP stack (net, tls, http, https) loads with the first client, not with Stowage.
const http = lazyModule<typeof Http>('node:http', 'the S3 driver');
const https = lazyModule<typeof Https>('node:https', 'the S3 driver');

/**
 * Creates the SDK client for resolved options. `endpoint` replaces the configured one:
 * the presigner signs for the public host with a client of its own (see presign.ts).
 */
export function createS3Client(o: ResolvedS3Options, endpoint = o.endpoint): S3Client {
  const agent = { keepAlive: true, maxSockets: o.maxSockets, keepAliveMsecs: 1000 };
  return new (s3().S3Client)({
    region: o.region,
    endpoint,
    forcePathStyle: o.forcePathStyle,
    credentials: o.credentials,
    requestChecksumCalculation: o.profile.checksums,
    responseChecksumValidation: o.profile.checksums,
    maxAttempts: 1,
    requestHandler: new (httpHandler().NodeHttpHandler)({
      httpAgent: new (http().Agent)(agent),
      httpsAgent: new (https().Agent)(agent),
      connectionTimeout: o.connectTimeoutMs,
      // socketTimeout is the idle-socket timeout (requestTimeout only warns, and caps the whole request).
      socketTimeout: o.socketTimeoutMs,
    }),
  });
}
