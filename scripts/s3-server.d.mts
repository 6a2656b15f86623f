// Types for scripts/s3-server.mjs, so TypeScript benchmarks can import it.
export interface S3Server {
  env: Record<string, string>;
  stop: () => void;
  error?: string;
}
export function ensureS3Server(baseEnv?: Record<string, string | undefined>): S3Server;
