/**
 * Runs the conformance suite through the outbox layer (its folder in the storage's temp
 * root), on the memory and fs drivers: with a healthy backend nothing is queued, and the
 * layer must change nothing a caller can observe.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { createStorage, withOutbox } from '../../src/index.js';
import { inTempRoot } from './harness.js';
import { runConformance } from './suite.js';

const outbox = (dir: string) => ({ dir, onWarning: (message: string) => console.warn(message) });

runConformance(inTempRoot('memory through the outbox layer', (root, options) => createStorage({ driver: 'memory', ...options }).withDriver((d) => withOutbox(d, outbox(join(root, 'outbox'))))));
runConformance(
  inTempRoot('fs through the outbox layer', (root, options) => {
    // The data in a folder of its own, beside the outbox's (which must not show up in listings).
    mkdirSync(join(root, 'data'));
    return createStorage({ driver: 'fs', root: join(root, 'data'), ...options }).withDriver((d) => withOutbox(d, outbox(join(root, 'outbox'))));
  }),
);
