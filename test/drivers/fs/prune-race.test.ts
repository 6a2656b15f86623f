/**
 * Deletes prune folders left empty, while writes in sibling keys create those folders:
 * a legal write must never fail because of a concurrent delete elsewhere, and every
 * write that reports success is stored whole with its metadata. Several processes, each
 * with several writers and deleters in the same folders, for hundreds of rounds.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { createStorage } from '../../../src/index.js';
import { runChild, tempRoot } from './helpers.js';

const roots: string[] = [];
after(async () => Promise.all(roots.map((r) => rm(r, { recursive: true, force: true }))));

const PROCESSES = 3;
const ROUNDS = 150;
const WRITERS = 4;
const DELETERS = 3;

describe('fs driver: writes racing deletes of neighbouring keys', () => {
  it(`never fails or loses metadata: ${PROCESSES} processes x ${WRITERS} writers and ${DELETERS} deleters, ${ROUNDS} rounds`, async () => {
    const dir = await tempRoot('prune-race');
    roots.push(dir);
    const runs = await Promise.all(Array.from({ length: PROCESSES }, (_, id) => runChild([dir, String(id), String(ROUNDS), String(WRITERS), String(DELETERS)], 'race.ts')));
    const reports = runs.map((lines) => lines.at(-1) as { failures: string[]; expected: Record<string, { sha256: string; round: number } | null> });
    assert.equal(reports.filter(Boolean).length, PROCESSES, 'every process reported');
    assert.deepEqual(reports.flatMap((r) => r.failures), [], 'no write or delete failed');

    const storage = createStorage({ driver: 'fs', root: dir });
    const present = Object.entries(Object.assign({}, ...reports.map((r) => r.expected)) as Record<string, { sha256: string; round: number } | null>);
    assert.equal(present.length, PROCESSES * WRITERS * 3, 'every writer key has a known final state');
    for (const [key, want] of present) {
      if (want === null) {
        assert.equal(await storage.exists(key), false, `${key} was deleted`);
        continue;
      }
      const [bytes, info] = await Promise.all([storage.get(key), storage.stat(key)]);
      assert.equal(createHash('sha256').update(bytes).digest('hex'), want.sha256, `${key}: the bytes of its last write`);
      assert.equal(info.sha256, want.sha256, `${key}: its digest`);
      assert.deepEqual([info.contentType, info.metadata.round], ['application/x-race', String(want.round)], `${key}: its metadata`);
    }
    const listed = (await storage.list({ prefix: 'race/' })).objects.map((o) => o.key).sort();
    assert.deepEqual(listed, present.filter(([, want]) => want !== null).map(([key]) => key).sort(), 'nothing else is stored');
    const temps = await readdir(join(dir, '.stowage', 'tmp'));
    for (const t of temps) assert.deepEqual(await readdir(join(dir, '.stowage', 'tmp', t)), [], 'no temp file is left');
    assert.deepEqual(await readdir(join(dir, '.stowage', 'locks')), [], 'no lock file is left');
  });
});
