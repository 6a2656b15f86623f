/** `stowage presign <key>`: a URL to download or upload without credentials until it expires. */
import type { Command } from 'commander';
import type { Runner } from './runner.js';
import { CliError, EXIT, output, parseCount, parseRef } from './shared.js';

/** Registers `presign`. */
export function registerPresign(program: Command, run: Runner): void {
  program
    .command('presign')
    .argument('<key>', 'a key in the default location, or <location>#<key>')
    .option('-m, --method <method>', 'GET (download), PUT (upload) or POST (browser form)', 'GET')
    .option('-e, --expires <seconds>', 'seconds until it expires (at most 604800)', '3600')
    .option('-t, --content-type <type>', 'the type an upload must have')
    .option('--max-size <bytes>', 'the largest upload accepted')
    .description('print a presigned (S3) or signed (local) URL for an object')
    .action(
      run<{ method: string; expires: string; contentType?: string; maxSize?: string }>(async ({ opts, locations }, key = '') => {
        const ref = parseRef(key);
        const storage = locations.storage(ref.location);
        const method = opts.method.toUpperCase();
        const expiresIn = parseCount(opts.expires, '--expires', 1, 604_800);
        const maxSize = opts.maxSize === undefined ? undefined : parseCount(opts.maxSize, '--max-size', 0, Number.MAX_SAFE_INTEGER);
        if (method === 'POST') {
          const post = await storage.presignPost(ref.path, { expiresIn, contentType: opts.contentType, maxSize });
          output(opts, { ...post, method, expiresAt: post.expiresAt.toISOString() }, () => [post.url, ...Object.entries(post.fields).map(([k, v]) => `  ${k}=${v}`)].join('\n'));
          return;
        }
        if (method !== 'GET' && method !== 'PUT') throw new CliError(`--method must be GET, PUT or POST, got ${opts.method}`, EXIT.usage);
        const signed = await storage.signedUrl(ref.path, { method, expiresIn, contentType: opts.contentType, maxSize });
        output(opts, { ...signed, expiresAt: signed.expiresAt.toISOString() }, () => signed.url);
      }),
    );
}
