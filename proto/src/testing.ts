// Test support shared by every package's tests and by tests/. It lives here because @cphone/proto
// is the one package every other already depends on, and depends on none of them: a helper here
// adds no dependency edge, where a helper in any other package would make its neighbours' tests
// reach into it. Nothing in the main export (src/index.ts) imports this file.
import { inspect } from 'node:util';

export interface WaitForOptions {
  /** Give up after this long (default 15 s). */
  timeoutMs?: number;
  /**
   * The longest pause between probes (default 100 ms). Pauses start at 10 ms and double up to it:
   * a condition that holds soon is seen soon, and one that takes seconds is not polled hard.
   */
  intervalMs?: number;
}

/**
 * Probes until `predicate` holds for the value, and returns that value (narrowed, when the
 * predicate is a type guard). A probe that throws is tried again. On timeout the error names `what`
 * and the last value or error seen, so a failed wait says how far the system got.
 */
export function waitFor<T, U extends T>(
  what: string,
  probe: () => T | PromiseLike<T>,
  predicate: (value: T) => value is U,
  options?: WaitForOptions,
): Promise<U>;
export function waitFor<T>(
  what: string,
  probe: () => T | PromiseLike<T>,
  predicate: (value: T) => boolean,
  options?: WaitForOptions,
): Promise<T>;
export async function waitFor<T>(
  what: string,
  probe: () => T | PromiseLike<T>,
  predicate: (value: T) => boolean,
  { timeoutMs = 15_000, intervalMs = 100 }: WaitForOptions = {},
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (let pause = Math.min(10, intervalMs); ; pause = Math.min(pause * 2, intervalMs)) {
    let probed: { value: T } | { error: unknown };
    try {
      probed = { value: await probe() };
    } catch (error) {
      probed = { error };
    }
    // The predicate runs outside the try: one that throws is a broken test, not a state to wait out.
    if ('value' in probed && predicate(probed.value)) return probed.value;
    if (Date.now() >= deadline) {
      const seen =
        'value' in probed
          ? describe(probed.value)
          : `error ${probed.error instanceof Error ? String(probed.error) : describe(probed.error)}`;
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}; last seen: ${seen}`);
    }
    await new Promise((resolve) => setTimeout(resolve, pause));
  }
}

function describe(value: unknown): string {
  const text = inspect(value, { depth: 3, breakLength: Number.POSITIVE_INFINITY });
  return text.length > 1000 ? `${text.slice(0, 1000)}…` : text;
}
