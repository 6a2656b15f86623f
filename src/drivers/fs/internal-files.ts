/**
 * The filesystem driver's internal files (see core/internal-files.ts), one file each
 * under `<root>/.stowage/internal/<name>`. A write goes to a temp file in the process's
 * temp folder (same filesystem), is fsynced, renamed over the name and its folder
 * fsynced, so a crash leaves the old bytes or the new ones. Folders left empty by a
 * delete are removed, as for objects.
 */
import { mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { mkdir, open, readdir, rename, rm } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { checkInternalName, checkInternalPrefix, INTERNAL_PAGE_SIZE, pageOf, type InternalFilesPage } from '../../core/internal-files.js';
import { syncDir } from '../../core/local-disk.js';
import { errnoCode } from './errors.js';
import type { FsLayout } from './layout.js';
import type { ReadIo } from './read-io.js';

/** Errors that mean "no such file" for a name: missing, or a file where a folder of the name would be. */
const MISSING = new Set(['ENOENT', 'ENOTDIR']);

/** Internal files of one root. */
export class FsInternalFiles {
  readonly #layout: FsLayout;
  readonly #durable: boolean;
  readonly #io: ReadIo;

  /** `io` runs the reads: on the event loop in the driver's default mode, as its object reads do. */
  constructor(layout: FsLayout, durable: boolean, io: ReadIo) {
    this.#layout = layout;
    this.#durable = durable;
    this.#io = io;
  }

  #path(name: string): string {
    return join(this.#layout.internalFilesDir, ...checkInternalName(name).split('/'));
  }

  /**
   * Temp file, fsync, rename over the name, fsync of its folder; without the fsyncs when
   * not `durable` (a cache's file), and then, in the `sync` read mode, on the event loop
   * like that mode's reads: a few KB into the page cache cost less there than the five
   * hops through the thread pool.
   */
  async put(name: string, data: Uint8Array, durable = true): Promise<void> {
    const path = this.#path(name);
    const temp = this.#layout.tempPath('.internal');
    const fsync = this.#durable && durable;
    try {
      if (!fsync && this.#io.mode === 'sync') {
        writeFileSync(temp, data, { flag: 'wx' });
        mkdirSync(dirname(path), { recursive: true });
        renameSync(temp, path);
        return;
      }
      const file = await open(temp, 'wx');
      try {
        await file.writeFile(data);
        if (fsync) await file.sync();
      } finally {
        await file.close();
      }
      await mkdir(dirname(path), { recursive: true });
      await rename(temp, path);
    } catch (err) {
      await rm(temp, { force: true });
      throw err;
    }
    if (fsync) await syncDir(dirname(path));
  }

  /**
   * The bytes, or undefined when missing; a link planted here is not followed. Files are
   * only ever replaced by rename, so the open file's size from fstat is its whole length.
   */
  async read(name: string): Promise<Uint8Array | undefined> {
    const path = this.#path(name);
    const io = this.#io;
    await io.turn();
    let fd: number;
    try {
      fd = await io.open(path, false);
    } catch (err) {
      if (MISSING.has(errnoCode(err) ?? '')) return undefined;
      throw err;
    }
    try {
      const { size } = await io.fstat(fd);
      return await io.read(fd, size, 0); // a folder at the name fails here with EISDIR
    } finally {
      await io.close(fd);
    }
  }

  /** Unlinks each file, then the folders that left empty. */
  async delete(names: readonly string[]): Promise<void> {
    const paths = names.map((name) => this.#path(name));
    for (const path of paths) {
      await rm(path, { force: true }).catch((err: unknown) => {
        if (!MISSING.has(errnoCode(err) ?? '')) throw err;
      });
    }
    for (const dir of new Set(paths.map((p) => dirname(p)))) await this.#layout.pruneEmptyDirs(dir, this.#layout.internalFilesDir);
  }

  /**
   * Walks the folders in the names' byte order (a folder sorts as its name plus `/`),
   * skipping whole folders that end before `cursor`, and stops after one page.
   */
  async list(prefix: string, cursor: string | undefined): Promise<InternalFilesPage> {
    checkInternalPrefix(prefix);
    const names: string[] = [];
    const walk = async (dir: string, base: string): Promise<boolean> => {
      let entries;
      try {
        entries = await readdir(dir, { withFileTypes: true });
      } catch (err) {
        if (MISSING.has(errnoCode(err) ?? '')) return true;
        throw err;
      }
      const sorted = entries.map((e) => ({ e, name: base + e.name + (e.isDirectory() ? '/' : '') })).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
      for (const { e, name } of sorted) {
        if (e.name.startsWith('.')) continue; // never a valid name: a stray temp file
        if (e.isDirectory()) {
          if (cursor !== undefined && !cursor.startsWith(name) && name < cursor) continue;
          if (!(await walk(join(dir, e.name), name))) return false;
        } else if (e.isFile() && (cursor === undefined || name > cursor)) {
          names.push(name);
          if (names.length > INTERNAL_PAGE_SIZE) return false;
        }
      }
      return true;
    };
    await walk(join(this.#layout.internalFilesDir, ...prefix.split('/').filter(Boolean)), prefix);
    return pageOf(names);
  }
}
