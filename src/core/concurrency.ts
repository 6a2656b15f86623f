/** Bounded concurrency, for work that fans out over many items (HEADs of a listing, parts of a copy). */

/**
 * Runs `task` for every item, at most `limit` at a time, and returns the results in the
 * items' order. The first failure rejects (tasks already started still finish).
 */
export async function mapConcurrently<T, R>(items: readonly T[], limit: number, task: (item: T, index: number) => Promise<R>): Promise<R[]> {
  const results = new Array<R>(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const index = next++;
      results[index] = await task(items[index] as T, index);
    }
  };
  await Promise.all(Array.from({ length: Math.min(Math.max(1, limit), items.length) }, worker));
  return results;
}
