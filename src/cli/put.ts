/**
 * `stowage put <file|-> <key>`: uploads a file (or stdin), atomically, with its SHA-256.
 * A file whose earlier upload was interrupted resumes where it stopped (on S3), and the
 * command says how much it did not send again.
 */
import type { Command } from 'commander';
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
        const storage = locations.storage(ref.location);
        const bar = transferBar(`put ${ref.path}`);
        const put = { contentType: opts.contentType, ifNoneMatch: opts.ifAbsent ? ('*' as const) : undefined, onProgress: bar.onProgress };
        const info = await (file === '-' ? storage.put(ref.path, process.stdin, put).then((stored) => ({ ...stored, resumedBytes: 0 })) : storage.putFile(ref.path, file, put)).finally(bar.stop);
        const resumed = info.resumedBytes > 0 ? `, resumed ${formatBytes(info.resumedBytes)} of ${formatBytes(info.size)}` : '';
        output(opts, { ...info, lastModified: info.lastModified.toISOString() }, () => `${file === '-' ? 'stdin' : file} -> ${info.key} (${formatBytes(info.size)}, ${info.contentType}, sha256 ${info.sha256 ?? '-'}${resumed})`);
      }),
    );
}
