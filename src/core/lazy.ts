/**
 * Dependencies loaded on first use. Importing Stowage must stay cheap for a program that
 * only stores files on disk, so packages that only some uses need (the AWS SDK, zod for
 * environment parsing, prom-client for metrics, mime's full table) are required when a
 * synchronous API first needs them rather than imported at the top of a module.
 * Asynchronous paths use `import()` instead. Both are resolved from `node_modules` at
 * run time (the README's "Entry points and bundlers" says what that means for a bundle).
 */
import { createRequire } from 'node:module';
import { StorageError } from './errors.js';

/** Node's `require`, made on first use: making it costs a few milliseconds at import. */
let requireFromHere: NodeJS.Require | undefined;

/** True when `err` says that `name` itself (not something inside it) could not be found. */
function isMissingPackage(err: unknown, name: string): boolean {
  const { code, message } = (err ?? {}) as { code?: unknown; message?: unknown };
  return (code === 'MODULE_NOT_FOUND' || code === 'ERR_MODULE_NOT_FOUND') && typeof message === 'string' && message.includes(`'${name}'`);
}

/**
 * A function returning the module `name`, required the first time it is called and the
 * same object after. `T` is the module's type: `lazyModule<typeof import('zod')>('zod', 'reading the environment')`.
 * When the package is not installed, the call throws E_CONFIG_INVALID saying what needs
 * it and how to install it.
 */
export function lazyModule<T>(name: string, neededFor: string): () => T {
  // lazyValue keeps nothing from a call that throws: a missing package fails each call alike.
  return lazyValue(() => {
    try {
      requireFromHere ??= createRequire(import.meta.url);
      return requireFromHere(name) as T;
    } catch (err) {
      if (!isMissingPackage(err, name)) throw err;
      throw new StorageError('E_CONFIG_INVALID', `${neededFor} needs the package ${name}, which is not installed: npm install ${name}`, { cause: err });
    }
  });
}

/** A value computed by `build` the first time it is asked for, and the same value after. */
export function lazyValue<T>(build: () => T): () => T {
  let value: { v: T } | undefined;
  return () => (value ??= { v: build() }).v;
}
