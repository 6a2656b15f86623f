/**
 * Facts about this machine that the local parts share (the fs driver, session leases,
 * the outbox): whether a process lives, and a folder's fsync.
 */
import { open } from 'node:fs/promises';

/** True when a process with this pid runs on this host (one we may not signal counts). */
export function processAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Syncs a folder, so the renames and unlinks in it survive a power loss. */
export async function syncDir(dir: string): Promise<void> {
  const handle = await open(dir, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}
