/**
 * Payload hashes for SigV4, computed off the main thread. On plain-HTTP endpoints the
 * SDK's signer hashes every request body with SHA-256 on the main thread, which next
 * to Stowage's own digest made uploads CPU-bound. WebCrypto's digest runs on libuv's
 * thread pool, so parts hash in parallel; the signer finds the header already set and
 * signs with it. The payload is still signed exactly as before.
 */
import type { PutObjectCommand, UploadPartCommand } from '@aws-sdk/client-s3';

/** The header SigV4 takes the payload hash from. */
const PAYLOAD_HASH_HEADER = 'x-amz-content-sha256';

/** Hex SHA-256 of a body, computed on the thread pool. */
export async function payloadSha256(body: Uint8Array): Promise<string> {
  return Buffer.from(await crypto.subtle.digest('SHA-256', body)).toString('hex');
}

/** Makes the command carry a precomputed payload hash for the signer. */
export function withPayloadHash<C extends UploadPartCommand | PutObjectCommand>(command: C, sha256Hex: string): C {
  (command as UploadPartCommand).middlewareStack.add(
    (next) => async (args) => {
      const request = args.request as { headers?: Record<string, string> };
      if (request.headers) request.headers[PAYLOAD_HASH_HEADER] = sha256Hex;
      return next(args);
    },
    { step: 'build', name: 'stowagePayloadHash' },
  );
  return command;
}
