import type { RuntimeEvent } from './types.js';

/** Fans runtime events out to every open `events()` iterable; each has its own unbounded queue. */
export class EventHub {
  readonly #subscribers = new Set<(event: RuntimeEvent) => void>();

  emit(event: RuntimeEvent): void {
    for (const deliver of this.#subscribers) deliver(event);
  }

  /** Subscribes at once (not at the first `next()`), so no event between the call and the loop is lost. */
  subscribe(signal: AbortSignal): AsyncIterable<RuntimeEvent> {
    const queue: RuntimeEvent[] = [];
    let wake: (() => void) | undefined;
    const deliver = (event: RuntimeEvent): void => {
      queue.push(event);
      wake?.();
    };
    const onAbort = (): void => {
      this.#subscribers.delete(deliver);
      wake?.();
    };
    if (!signal.aborted) {
      this.#subscribers.add(deliver);
      signal.addEventListener('abort', onAbort, { once: true });
    }
    async function* drain(): AsyncGenerator<RuntimeEvent> {
      try {
        while (!signal.aborted) {
          const next = queue.shift();
          if (next !== undefined) {
            yield next;
            continue;
          }
          await new Promise<void>((resolve) => {
            wake = resolve;
          });
          wake = undefined;
        }
      } finally {
        onAbort();
        signal.removeEventListener('abort', onAbort);
      }
    }
    return drain();
  }
}
