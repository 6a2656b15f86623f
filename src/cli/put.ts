/**
 * `stowage put <file|-> <key>`: uploads a file (or stdin), atomically, with its SHA-256.
 * A file whose earlier upload was interrupted resumes where it stopped (on S3), and the
 * command says how much it did not send again. With an outbox (STOWAGE_OUTBOX_DIR) a
 * write the backend cannot take now is queued there, and put says so: "queued", not stored.
 */
import type { Command } from 'commander';
import { isQueued } from '../core/objects.js';
import type { Runner } from './runner.js';
import { formatBytes, output, parseRef, transferBar } from './shared.js';

/** Registers `put`. */
export function registerPut(program: Command, run: Runner): void {
  program
    .command('put')
    .argument('<file>', 'the file to upload, or - for stdin')
    .argument('<key>', 'a key in the default location, or <location>#<key>')
    .option('-t, --content-type <type>', 'the Content-Type (default: guessed from the key)')
    .option('--if-absent', 'fail instead of replacing an existing object')
    .description('upload a file or stdin as an object')
    .action(
      run<{ contentType?: string; ifAbsent?: boolean }>(async ({ opts, locations }, file = '', key = '') => {
        const ref = parseRef(key);
        const storage = locations.writer(ref.location);
        const bar = transferBar(`put ${ref.path}`);
        const put = { contentType: opts.contentType, ifNoneMatch: opts.ifAbsent ? ('*' as const) : undefined, onProgress: bar.onProgress };
        const info = await (file === '-' ? storage.put(ref.path, process.stdin, put).then((stored) => ({ ...stored, resumedBytes: 0 })) : storage.putFile(ref.path, file, put)).finally(bar.stop);
        if (isQueued(info)) {
          const note = `queued in the outbox, not stored yet: the backend failed with ${info.reason}; it is delivered by the service on this outbox, or by stowage outbox drain`;
          return output(opts, { ...info, queuedAt: info.queuedAt.toISOString() }, () => `${file === '-' ? 'stdin' : file} -> ${info.key} queued (${formatBytes(info.size)}, sha256 ${info.sha256}, entry ${info.id}): ${note}`);
        }
        const resumed = info.resumedBytes > 0 ? `, resumed ${formatBytes(info.resumedBytes)} of ${formatBytes(info.size)}` : '';
        output(opts, { ...info, lastModified: info.lastModified.toISOString() }, () => `${file === '-' ? 'stdin' : file} -> ${info.key} (${formatBytes(info.size)}, ${info.contentType}, sha256 ${info.sha256 ?? '-'}${resumed})`);
      }),
    );
}
