/**
 * The HTTP service as the main `stowage` entry offers it: `buildApp` and `stowageRoutes`
 * that import Fastify and the routes when first called, so `import { createStorage } from
 * 'stowage'` never loads them. `stowage/http` exports the same functions directly.
 */
import type { FastifyInstance, FastifyPluginAsync } from 'fastify';
import type { BuildAppOptions, StowageRoutesOptions } from './app.js';

/** Default upload limit: 5 GiB, S3's single-object PUT limit. */
export const DEFAULT_MAX_UPLOAD_SIZE = 5 * 1024 ** 3;

/** The app module, imported on first use (a bundler makes it a chunk of its own). */
const appModule = () => import('./app.js');

/** Builds the service without listening: `buildApp` of `stowage/http`, loaded on first call. */
export async function buildApp(opts: BuildAppOptions): Promise<FastifyInstance> {
  return (await appModule()).buildApp(opts);
}

/**
 * The Stowage routes as a Fastify plugin: `stowageRoutes` of `stowage/http`, loaded when
 * the app registers it. Registering this function opens the plugin's own scope, in which
 * the routes are installed just as if the real plugin had been registered.
 */
export const stowageRoutes: FastifyPluginAsync<StowageRoutesOptions> = async function stowageRoutes(app, opts) {
  await (await appModule()).stowageRoutes.call(app, app, opts);
};
