import { whenAborted } from './abort.js';

/** Bounds concurrent operations on one device: adbd serves sockets from one connection in turn. */
export class Semaphore {
  #available: number;
  readonly #waiters: (() => void)[] = [];

  constructor(readonly limit: number) {
    if (!Number.isInteger(limit) || limit < 1)
      throw new RangeError(`semaphore limit must be >= 1, got ${limit}`);
    this.#available = limit;
  }

  get pending(): number {
    return this.#waiters.length;
  }

  /** Resolves with a release function once a slot is free; rejects if `signal` aborts first. */
  async acquire(signal?: AbortSignal): Promise<() => void> {
    signal?.throwIfAborted();
    if (this.#available > 0) {
      this.#available--;
      return this.#releaser();
    }
    let granted!: () => void;
    const turn = new Promise<void>((resolve) => {
      granted = resolve;
    });
    this.#waiters.push(granted);
    const aborted = whenAborted(signal);
    try {
      await Promise.race([turn, aborted.promise]);
    } catch (error) {
      const index = this.#waiters.indexOf(granted);
      if (index !== -1) this.#waiters.splice(index, 1);
      // Granted in the same tick the abort landed: hand the slot on.
      else this.#release();
      throw error;
    } finally {
      aborted.dispose();
    }
    return this.#releaser();
  }

  #releaser(): () => void {
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.#release();
    };
  }

  #release(): void {
    const next = this.#waiters.shift();
    if (next) next();
    else this.#available++;
  }
}
