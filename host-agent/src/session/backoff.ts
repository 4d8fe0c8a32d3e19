export interface BackoffOptions {
  /** First ceiling, ms. Default 500. */
  readonly baseMs?: number;
  /** Highest ceiling, ms. Default 30000. */
  readonly capMs?: number;
  /** [0, 1) source; tests pin it. Default Math.random. */
  readonly random?: () => number;
}

/**
 * Exponential backoff with full jitter (AWS architecture blog, "Exponential Backoff and Jitter"):
 * the n-th delay is uniform in [0, min(cap, base * 2^n)), so a fleet of agents that lost the same
 * control plane does not come back in lockstep.
 */
export class Backoff {
  readonly baseMs: number;
  readonly capMs: number;
  readonly #random: () => number;
  #attempt = 0;

  constructor(options: BackoffOptions = {}) {
    this.baseMs = options.baseMs ?? 500;
    this.capMs = options.capMs ?? 30_000;
    this.#random = options.random ?? Math.random;
  }

  /** Attempts since the last reset. */
  get attempt(): number {
    return this.#attempt;
  }

  /** The ceiling the next delay is drawn under. */
  ceiling(): number {
    // 2^n overflows to Infinity for large n, which min() then caps.
    return Math.min(this.capMs, this.baseMs * 2 ** this.#attempt);
  }

  /** The next delay, ms; advances the attempt count. */
  next(): number {
    const delay = Math.floor(this.#random() * this.ceiling());
    this.#attempt++;
    return delay;
  }

  /** A delay at the cap with jitter, for errors that retrying sooner cannot fix (bad credential). */
  atCap(): number {
    this.#attempt = Math.max(this.#attempt, Math.ceil(Math.log2(this.capMs / this.baseMs)));
    // Half to full cap: never hammer, still spread.
    return Math.floor(this.capMs / 2 + this.#random() * (this.capMs / 2));
  }

  reset(): void {
    this.#attempt = 0;
  }
}
