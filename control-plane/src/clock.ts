/** Time behind an interface, so tests can move it. */
export interface Clock {
  now(): Date;
}

export const systemClock: Clock = { now: () => new Date() };

/**
 * The one controllable clock for tests: time stands still until the test moves it, so a test that
 * crosses a TTL does it in one step instead of waiting it out, and nothing the clock decides races
 * the wall clock.
 *
 * `ticking: true` lets it run on with the wall clock from where the test put it. A control plane
 * that talks to real agents needs that: agents judge command deadlines and sample times by their
 * own wall clock, which a frozen control-plane clock would fall further behind every second.
 */
export class ManualClock implements Clock {
  #offsetMs: number;
  readonly #ticking: boolean;

  constructor({ start = new Date(), ticking = false }: { start?: Date; ticking?: boolean } = {}) {
    this.#ticking = ticking;
    this.#offsetMs = start.getTime() - this.#base();
  }

  now(): Date {
    return new Date(this.#base() + this.#offsetMs);
  }

  /** Moves the clock forward by `ms` and returns the new time. */
  advance(ms: number): Date {
    if (!(ms >= 0)) throw new RangeError(`a clock only moves forward, not by ${ms} ms`);
    this.#offsetMs += ms;
    return this.now();
  }

  /** Puts the clock at `date` (forward or back: a test may model a clock step). */
  set(date: Date): void {
    this.#offsetMs = date.getTime() - this.#base();
  }

  #base(): number {
    return this.#ticking ? Date.now() : 0;
  }
}
