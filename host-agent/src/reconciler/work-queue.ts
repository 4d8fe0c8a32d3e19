/**
 * Runs `worker(key)` with at most one run per key at a time and at most `concurrency` runs overall.
 * Scheduling a key that is already waiting is a no-op; scheduling a key that is running makes it run
 * once more afterwards (the run may have read state that has since changed). This is the per-device
 * queue of the reconciler: one operation at a time per phone, different phones in parallel.
 */
export class KeyedWorkQueue {
  readonly #worker: (key: string) => Promise<void>;
  readonly #concurrency: number;
  readonly #waiting = new Set<string>();
  readonly #running = new Set<string>();
  readonly #dirty = new Set<string>();
  readonly #timers = new Map<string, { at: number; timer: NodeJS.Timeout }>();
  #idleWaiters: (() => void)[] = [];
  #closed = false;

  constructor(worker: (key: string) => Promise<void>, concurrency: number) {
    this.#worker = worker;
    this.#concurrency = concurrency;
  }

  schedule(key: string): void {
    if (this.#closed) return;
    if (this.#running.has(key)) {
      this.#dirty.add(key);
      return;
    }
    this.#waiting.add(key);
    this.#pump();
  }

  /** Schedules `key` after `delayMs`; an earlier pending timer for the key wins. */
  scheduleAfter(key: string, delayMs: number): void {
    if (this.#closed) return;
    const at = Date.now() + delayMs;
    const existing = this.#timers.get(key);
    if (existing !== undefined && existing.at <= at) return;
    if (existing !== undefined) clearTimeout(existing.timer);
    const timer = setTimeout(() => {
      this.#timers.delete(key);
      this.schedule(key);
    }, delayMs);
    timer.unref();
    this.#timers.set(key, { at, timer });
  }

  /** Resolves once nothing is waiting or running (pending timers do not count). */
  idle(): Promise<void> {
    if (this.#waiting.size === 0 && this.#running.size === 0) return Promise.resolve();
    return new Promise((resolve) => this.#idleWaiters.push(resolve));
  }

  /** Stops taking work, drops timers and waiting keys, and waits for the runs in progress. */
  async close(): Promise<void> {
    this.#closed = true;
    for (const { timer } of this.#timers.values()) clearTimeout(timer);
    this.#timers.clear();
    this.#waiting.clear();
    this.#dirty.clear();
    await this.idle();
  }

  #pump(): void {
    for (const key of this.#waiting) {
      if (this.#running.size >= this.#concurrency) break;
      if (this.#running.has(key)) continue;
      this.#waiting.delete(key);
      this.#running.add(key);
      void this.#run(key);
    }
    if (this.#waiting.size === 0 && this.#running.size === 0) {
      const waiters = this.#idleWaiters;
      this.#idleWaiters = [];
      for (const resolve of waiters) resolve();
    }
  }

  async #run(key: string): Promise<void> {
    try {
      await this.#worker(key);
    } catch {
      // The worker owns its errors (it logs and reschedules); a throw must not stall the queue.
    } finally {
      this.#running.delete(key);
      if (this.#dirty.delete(key) && !this.#closed) this.#waiting.add(key);
      this.#pump();
    }
  }
}
