/**
 * The monotonic clock both encoders stamp with. On a phone PTS come from the capture's own clock
 * (frames and audio share it, which keeps them in sync); here it starts when the server starts
 * streaming, so a PTS is the capture time in microseconds since then.
 */
export class StreamClock {
  readonly #originMs = performance.now();

  /** Milliseconds since the origin (performance.now() based). */
  nowMs(): number {
    return performance.now() - this.#originMs;
  }

  /** performance.now() of an offset from the origin, for scheduling. */
  at(offsetMs: number): number {
    return this.#originMs + offsetMs;
  }

  toPtsUs(offsetMs: number): bigint {
    return BigInt(Math.round(offsetMs * 1000));
  }
}

/** Resolves after `ms` or as soon as `wake` fires or `signal` aborts, whichever comes first. */
export function sleepUntil(ms: number, signal: AbortSignal, wake?: Promise<void>): Promise<void> {
  if (signal.aborted) return Promise.resolve();
  return new Promise((resolve) => {
    const done = (): void => {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    };
    const timer = Number.isFinite(ms) ? setTimeout(done, Math.max(0, ms)) : undefined;
    signal.addEventListener('abort', done, { once: true });
    void wake?.then(done);
  });
}
