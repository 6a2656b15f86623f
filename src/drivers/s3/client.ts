/**
 * The one S3 client of a driver: a keep-alive socket pool, connect and idle timeouts,
 * and the provider's checksum mode. The SDK's own retries are off (maxAttempts 1)
 * because Stowage retries per request, where it knows whether a body can be re-sent.
 */
import type { S3Client } from '@aws-sdk/client-s3';
import { Agent as HttpAgent } from 'node:http';
import { Agent as HttpsAgent } from 'node:https';
import type { ResolvedS3Options } from './options.js';
import { httpHandler, s3 } from './sdk.js';

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
      httpAgent: new HttpAgent(agent),
      httpsAgent: new HttpsAgent(agent),
      connectionTimeout: o.connectTimeoutMs,
      // socketTimeout is the idle-socket timeout (requestTimeout only warns, and caps the whole request).
      socketTimeout: o.socketTimeoutMs,
    }),
  });
}
