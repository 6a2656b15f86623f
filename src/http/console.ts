/**
 * The web console at `/console/`: a few static files (src/console/, copied into
 * dist/console/ with tus-js-client's browser build by `npm run build`), served by the
 * service itself, so it works offline and with no CDN. They hold no data: what the
 * console shows comes from the API, with the identity the user logs in with. A strict
 * Content-Security-Policy lets the page run only its own scripts and styles and talk only
 * to this origin; media may come from signed links on the backend (S3).
 */
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import type { FastifyInstance } from 'fastify';

/** The console's policy: its own files only, images from blobs it made, media by signed links. */
export const CONSOLE_CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' blob: data:",
  "media-src 'self' blob: https: http:",
  "connect-src 'self'",
  "form-action 'self'",
  "frame-ancestors 'none'",
  "base-uri 'none'",
].join('; ');

/** The files, by name, with their types. */
const FILES: Record<string, string> = {
  'index.html': 'text/html; charset=utf-8',
  'app.js': 'text/javascript; charset=utf-8',
  'style.css': 'text/css; charset=utf-8',
  'tus.min.js': 'text/javascript; charset=utf-8',
};

/**
 * Where a file is: beside this module's folder (`dist/console/` once built, `src/console/`
 * from the sources); tus-js-client's browser build, when not copied there, from the
 * package itself (a checkout, where it is a development dependency).
 */
async function load(name: string): Promise<Buffer> {
  const own = fileURLToPath(new URL(`../console/${name}`, import.meta.url));
  try {
    return await readFile(own);
  } catch (err) {
    if (name !== 'tus.min.js') throw err;
    return readFile(createRequire(import.meta.url).resolve('tus-js-client/dist/tus.min.js'));
  }
}

/** Registers `/console` (a redirect) and `/console/<file>`. */
export async function consoleRoutes(app: FastifyInstance): Promise<void> {
  // Read once, at start-up: a missing file fails there, not on a user's first visit.
  const files = new Map(await Promise.all(Object.keys(FILES).map(async (name) => [name, await load(name)] as const)));
  const hidden = { schema: { hide: true } };
  app.get('/console', hidden, async (_request, reply) => reply.redirect('/console/', 302));
  app.get<{ Params: { file?: string } }>('/console/:file', hidden, async (request, reply) => {
    const name = request.params.file || 'index.html';
    const body = files.get(name);
    const type = FILES[name];
    if (body === undefined || type === undefined) return reply.callNotFound();
    return reply
      .header('content-security-policy', CONSOLE_CSP)
      .header('x-content-type-options', 'nosniff')
      .header('referrer-policy', 'no-referrer')
      .header('cache-control', 'no-cache')
      .type(type)
      .send(body);
  });
}
