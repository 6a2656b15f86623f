/**
 * The conformance suite: one set of behaviours every driver must pass unchanged.
 * A driver's test file calls `runConformance(target)`; each case gets a fresh store.
 */
import { afterEach, beforeEach, describe } from 'node:test';
import type { Storage } from '../../src/index.js';
import { abortCases } from './cases-abort.js';
import { transferCases } from './cases-transfer.js';
import { concurrencyCases } from './cases-concurrency.js';
import { conditionalCases } from './cases-conditional.js';
import { internalCases } from './cases-internal.js';
import { keyCases } from './cases-keys.js';
import { listCases } from './cases-list.js';
import { objectCases } from './cases-objects.js';
import { readCases } from './cases-read.js';
import { concatCases } from './cases-concat.js';
import { sessionCases } from './cases-sessions.js';
import { writeCases } from './cases-write.js';
import type { ConformanceTarget } from './harness.js';

/** Gives each case a fresh storage from the target. */
export type StorageGetter = () => Storage;

/** Registers the whole suite for one driver. */
export function runConformance(target: ConformanceTarget): void {
  describe(`conformance: ${target.name}`, () => {
    let storage: Storage | undefined;
    beforeEach(async () => {
      storage = await target.create();
    });
    afterEach(async () => {
      if (storage) await target.destroy(storage);
      storage = undefined;
    });
    const get: StorageGetter = () => {
      if (!storage) throw new Error('no storage: the suite runs cases only between beforeEach and afterEach');
      return storage;
    };
    describe('writes', () => writeCases(get));
    describe('reads and ranges', () => readCases(get));
    describe('conditional reads and range sizes', () => conditionalCases(get));
    describe('keys', () => keyCases(get));
    describe('listing', () => listCases(get));
    describe('delete, copy, move, signed URLs, health', () => objectCases(get, target));
    describe('concurrency', () => concurrencyCases(get));
    describe('cancelling', () => abortCases(get));
    describe('progress and web streams', () => transferCases(get));
    describe('upload sessions', () => sessionCases(get));
    describe('concatenation of partial sessions', () => concatCases(get));
    describe('internal files', () => internalCases(get));
  });
}
