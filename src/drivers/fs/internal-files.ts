/**
 * The filesystem driver's internal files (see core/internal-files.ts), one file each
 * under `<root>/.stowage/internal/<name>`. A write goes to a temp file in the process's
 * temp folder (same filesystem), is fsynced, renamed over the name and its folder
 * fsynced, so a crash leaves the old bytes or the new ones. Folders left empty by a
 * delete are removed, as for objects.
 */
import { constants } from 'node:fs';
import { mkdir, open, readdir, rename, rm } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { checkInternalName, checkInternalPrefix, INTERNAL_PAGE_SIZE, pageOf, type InternalFilesPage } from '../../core/internal-files.js';
import { syncDir } from '../../core/local-disk.js';
import { errnoCode } from './errors.js';
import type { FsLayout } from './layout.js';

/** Errors that mean "no such file" for a name: missing, or a file where a folder of the name would be. */
const MISSING = new Set(['ENOENT', 'ENOTDIR']);

/** Internal files of one root. */
export class FsInternalFiles {
  readonly #layout: FsLayout;
  readonly #durable: boolean;

  constructor(layout: FsLayout, durable: boolean) {
    this.#layout = layout;
    this.#durable = durable;
  }

  #path(name: string): string {
    return join(this.#layout.internalFilesDir, ...checkInternalName(name).split('/'));
  }

  /** Temp file, fsync, rename over the name, fsync of its folder; without the fsyncs when not `durable` (a cache's file). */
  async put(name: string, data: Uint8Array, durable = true): Promise<void> {
    const path = this.#path(name);
    const temp = this.#layout.tempPath('.internal');
    try {
      const file = await open(temp, 'wx');
      try {
        await file.writeFile(data);
        if (this.#durable && durable) await file.sync();
      } finally {
        await file.close();
      }
      await mkdir(dirname(path), { recursive: true });
      await rename(temp, path);
    } catch (err) {
      await rm(temp, { force: true });
      throw err;
    }
    if (this.#durable && durable) await syncDir(dirname(path));
  }

  /** The bytes, or undefined when missing; a link planted here is not followed. */
  async read(name: string): Promise<Uint8Array | undefined> {
    let file;
    try {
      file = await open(this.#path(name), constants.O_RDONLY | constants.O_NOFOLLOW);
    } catch (err) {
      if (MISSING.has(errnoCode(err) ?? '')) return undefined;
      throw err;
    }
    try {
      return await file.readFile();
    } finally {
      await file.close();
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
