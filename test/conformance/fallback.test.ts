/**
 * Runs the conformance suite against the fallback driver: an fs primary over a memory
 * secondary, each case in a fresh temp root. The suite writes through the fallback, so
 * this checks that the two backends together keep every promise of one.
 */
import { createStorage } from '../../src/index.js';
import { inTempRoot } from './harness.js';
import { runConformance } from './suite.js';

runConformance(
  inTempRoot('fallback (fs over memory)', (root, options) =>
    createStorage({ driver: 'fallback', primary: createStorage({ driver: 'fs', root }), secondary: createStorage({ driver: 'memory' }), ...options }),
  ),
);
