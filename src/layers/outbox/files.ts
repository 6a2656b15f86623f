/**
 * The outbox folder on disk, and the durable file steps the outbox is built of:
 *
 *     <dir>/lock            the pid of the process that owns the outbox
 *     <dir>/journal.log     the journal (journal.ts)
 *     <dir>/tmp/            bodies being written (never acknowledged; removed on start)
 *     <dir>/spool/<id>      bodies of queued entries
 *     <dir>/dead/<id>       bodies of dead letters, each beside <id>.json (the entry and why)
 *
 * One process owns the folder at a time (the lock), since two delivering the same entries
 * could overwrite each other's newer writes.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, open, readFile, rename, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { StorageError } from '../../core/errors.js';
import { processAlive, syncDir } from '../../core/local-disk.js';
import { errnoCode } from '../../drivers/fs/errors.js';

/** The sub-folders of an outbox folder. */
export interface OutboxPaths {
  dir: string;
  tmp: string;
  spool: string;
  dead: string;
}

/** The folders of the outbox at `dir` (created if missing). */
export async function outboxPaths(dir: string, create: boolean): Promise<OutboxPaths> {
  const paths = { dir, tmp: join(dir, 'tmp'), spool: join(dir, 'spool'), dead: join(dir, 'dead') };
  if (create) for (const folder of [paths.tmp, paths.spool, paths.dead]) await mkdir(folder, { recursive: true });
  return paths;
}

/** A new entry id: sortable by creation time, unique across processes. */
export function newEntryId(): string {
  return `${Date.now().toString(36).padStart(9, '0')}-${randomBytes(6).toString('hex')}`;
}

/** An entry id as the outbox makes them, so a name from the command line or a folder cannot be a path. */
export function isEntryId(id: string): boolean {
  return /^[0-9a-z]{9}-[0-9a-f]{12}$/.test(id);
}


/** Removes a file; one already gone is fine. */
export async function removeFile(path: string): Promise<void> {
  try {
    await unlink(path);
  } catch (err) {
    if (errnoCode(err) !== 'ENOENT') throw err;
  }
}

/** Writes a small file durably: a temp file, synced, renamed into place, the folder synced. */
export async function writeFileDurably(path: string, folder: string, text: string): Promise<void> {
  const temp = `${path}.${randomBytes(4).toString('hex')}.tmp`;
  const handle = await open(temp, 'w');
  try {
    await handle.writeFile(text);
    await handle.sync();
  } finally {
    await handle.close();
  }
  await rename(temp, path);
  await syncDir(folder);
}

/** True when process `pid` is alive (on this machine). */


/** The tokens of the locks this process holds: a lock naming our pid but another token is a previous process's (a container restarts with the same pid). */
const heldTokens = new Set<string>();

/**
 * Takes the outbox folder for this process: creates `<dir>/lock` with this pid, or takes
 * it over when the process named in it is gone (killed before it could remove it).
 * Another live owner is E_UNAVAILABLE naming it. Returns the release function.
 */
export async function lockOutbox(dir: string): Promise<() => Promise<void>> {
  const file = join(dir, 'lock');
  const token = randomBytes(8).toString('hex');
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      await writeFile(file, `${process.pid} ${token}`, { flag: 'wx' });
      heldTokens.add(token);
      return async () => {
        heldTokens.delete(token);
        await removeFile(file);
      };
    } catch (err) {
      if (errnoCode(err) !== 'EEXIST') throw err;
    }
    const [pidText = '', ownerToken = ''] = (await readFile(file, 'utf8').catch(() => '')).split(' ');
    const owner = Number(pidText);
    const inUse = owner === process.pid ? heldTokens.has(ownerToken) : processAlive(owner);
    if (inUse) throw new StorageError('E_UNAVAILABLE', `the outbox at ${dir} is in use by process ${owner} (one process at a time delivers an outbox)`, { details: { pid: owner } });
    // Its owner died (or the file is empty: it died while writing it): take it over.
    await removeFile(file);
  }
  throw new StorageError('E_UNAVAILABLE', `cannot take the lock of the outbox at ${dir}`);
}
