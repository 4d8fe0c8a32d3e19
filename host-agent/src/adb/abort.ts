// AbortSignal plumbing shared by every ADB operation.

export interface OperationOptions {
  /** Aborts the operation; its reason is thrown. */
  signal?: AbortSignal | undefined;
  /** Aborts the operation after this long with a TimeoutError. */
  timeoutMs?: number | undefined;
}

/** One signal for an operation's caller signal and timeout (either may be absent). */
export function operationSignal({ signal, timeoutMs }: OperationOptions): AbortSignal | undefined {
  const signals: AbortSignal[] = [];
  if (signal) signals.push(signal);
  if (timeoutMs !== undefined) signals.push(AbortSignal.timeout(Math.max(0, timeoutMs)));
  if (signals.length <= 1) return signals[0];
  return AbortSignal.any(signals);
}

/** Rejects with the signal's reason when it aborts; never settles otherwise. */
export function whenAborted(signal: AbortSignal | undefined): { promise: Promise<never>; dispose(): void } {
  if (!signal) return { promise: new Promise<never>(() => {}), dispose: () => {} };
  let listener: (() => void) | undefined;
  const promise = new Promise<never>((_, reject) => {
    if (signal.aborted) {
      reject(signal.reason);
      return;
    }
    listener = () => reject(signal.reason);
    signal.addEventListener('abort', listener, { once: true });
  });
  // A rejection nobody awaits must not crash the process.
  promise.catch(() => {});
  return {
    promise,
    dispose: () => {
      if (listener) signal.removeEventListener('abort', listener);
    },
  };
}

/** Runs `work` but settles as soon as `signal` aborts (the work is expected to notice and stop). */
export async function raceAbort<T>(work: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  const aborted = whenAborted(signal);
  try {
    return await Promise.race([work, aborted.promise]);
  } finally {
    aborted.dispose();
  }
}

/** Sleeps `ms`, rejecting early (and clearing the timer) with the signal's reason. */
export function delay(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    if (signal?.aborted) {
      reject(signal.reason);
      return;
    }
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(signal?.reason);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
