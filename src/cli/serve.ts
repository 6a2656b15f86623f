/** `stowage serve`: the HTTP service, configured like `npm start` (HOST, PORT, STORAGE_*, ...). */
import type { Command } from 'commander';
import type { Runner } from './runner.js';
import { parseCount } from './shared.js';

/** Registers `serve`. */
export function registerServe(program: Command, run: Runner): void {
  program
    .command('serve')
    .option('--host <host>', 'the address to listen on (default: HOST or 127.0.0.1)')
    .option('-p, --port <port>', 'the port (default: PORT or 8080)')
    .description('run the HTTP service on the default location (see the README for its variables)')
    .action(
      run<{ host?: string; port?: string }>(async ({ opts }) => {
        const env = { ...process.env };
        if (opts.storage !== undefined) env.STORAGE_URL = opts.storage;
        if (opts.host !== undefined) env.HOST = opts.host;
        if (opts.port !== undefined) env.PORT = String(parseCount(opts.port, '--port', 0, 65535));
        // The service (Fastify and its plugins) loads only for this command.
        const { runServer } = await import('../http/server.js');
        await runServer(env);
        // The server keeps the process alive until SIGTERM/SIGINT.
        await new Promise(() => undefined);
      }),
    );
}
