/**
 * Serialises work per key inside this process (one upload's chunks and its finalize). Uploads are
 * staged on this replica's disk, so a client resumes against the same replica; the database's
 * conditional updates still refuse a conflicting write from anywhere else.
 */
export function createKeyedLock() {
  const tails = new Map<string, Promise<unknown>>();
  return async function withLock<T>(key: string, work: () => Promise<T>): Promise<T> {
    const previous = tails.get(key) ?? Promise.resolve();
    const run = previous.then(work, work);
    const tail = run.catch(() => undefined);
    tails.set(key, tail);
    try {
      return await run;
    } finally {
      if (tails.get(key) === tail) tails.delete(key);
    }
  };
}
