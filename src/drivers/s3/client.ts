/**
 * The S3 clients of a driver, made in one place: its own (a keep-alive socket pool,
 * connect and idle timeouts, the provider's checksum mode), or the caller's, and the
 * one that signs for a public host. The SDK's own retries are off on ours (maxAttempts
 * 1) because Stowage retries per request, where it knows whether a body can be re-sent.
 */
import type { S3Client } from '@aws-sdk/client-s3';
import { createHash, randomUUID } from 'node:crypto';
import type * as Http from 'node:http';
import type * as Https from 'node:https';
import { lazyModule } from '../../core/lazy.js';
import type { ResolvedS3Options } from './options.js';
import { httpHandler, s3 } from './sdk.js';

// Node's HTTP stack (net, tls, http, https) loads with the first client, not with Stowage.
const http = lazyModule<typeof Http>('node:http', 'the S3 driver');
const https = lazyModule<typeof Https>('node:https', 'the S3 driver');

/** Creates the driver's own SDK client for resolved options; `endpoint` replaces the configured one (see createSigningClient). */
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

/**
 * A client that signs for `endpoint` (the public host of `publicUrl`) and never sends a
 * request: SigV4 signs the host, so links for another host need a client configured with
 * it. Beside a caller's client it takes that client's region, credentials, path style and
 * checksum mode, so links are signed with the same keys as every request.
 */
export function createSigningClient(o: ResolvedS3Options, endpoint: string): S3Client {
  const theirs = o.client?.config;
  if (!theirs) return createS3Client(o, endpoint);
  return new (s3().S3Client)({
    region: theirs.region,
    endpoint,
    forcePathStyle: theirs.forcePathStyle,
    credentials: theirs.credentials,
    requestChecksumCalculation: theirs.requestChecksumCalculation,
    responseChecksumValidation: theirs.responseChecksumValidation,
  });
}

/**
 * Warns when a caller's client keeps the SDK's default checksum mode for a service whose
 * profile needs `WHEN_REQUIRED` (every one but AWS): services other than AWS may refuse
 * the checksums the SDK then adds (Ceph RGW 16 refuses its checksummed streaming bodies
 * with 411, though it takes Stowage's buffered ones). A warning, not an error: the client
 * states its mode only asynchronously, and the service may well accept it.
 */
export async function warnOnChecksumMode(o: ResolvedS3Options): Promise<void> {
  const config = o.client?.config;
  if (!config || o.profile.checksums !== 'WHEN_REQUIRED') return;
  // A mode that cannot be read fails the client's requests with its own error; nothing to add here.
  const modes: string[] = await Promise.all([config.requestChecksumCalculation(), config.responseChecksumValidation()]).catch(() => []);
  if (!modes.includes('WHEN_SUPPORTED')) return;
  process.emitWarning(
    `the S3 client given to Stowage (provider ${o.provider}) uses the SDK's default checksum mode WHEN_SUPPORTED; services other than AWS may refuse its checksums: build the client with requestChecksumCalculation and responseChecksumValidation 'WHEN_REQUIRED' (Stowage's SHA-256 covers integrity)`,
    { code: 'STOWAGE_S3_CHECKSUMS' },
  );
}

/** Names for objects that hold access without saying it (a client, a credential provider), one per object. */
const identities = new WeakMap<object, string>();

function identityOf(holder: object): string {
  let id = identities.get(holder);
  if (id === undefined) identities.set(holder, (id = randomUUID()));
  return id;
}

/**
 * Names the service and the access to it, for `location()`: drivers with the same
 * endpoint, region and keys (or the same client, or the same credential provider) may
 * copy between their buckets. A digest, so the location holds no secret.
 */
export function serviceIdOf(o: ResolvedS3Options): string {
  const { credentials } = o;
  const keys = typeof credentials === 'function' ? [identityOf(credentials)] : [credentials?.accessKeyId ?? null, credentials?.secretAccessKey ?? null];
  const access = o.client ? [identityOf(o.client)] : [o.endpoint ?? null, o.region, ...keys];
  return `s3:${createHash('sha256').update(JSON.stringify(access)).digest('hex')}`;
}
