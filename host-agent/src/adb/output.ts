import type { ReadableStream } from '@yume-chan/stream-extra';

/**
 * Keeps the first `limit` bytes of a stream and counts the rest. Reading never stops at the limit:
 * ADB multiplexes every socket over one connection, so an unread socket would stall the others.
 */
export class CappedBuffer {
  readonly #chunks: Uint8Array[] = [];
  #kept = 0;
  total = 0;

  constructor(readonly limit: number) {}

  get truncated(): boolean {
    return this.total > this.limit;
  }

  push(chunk: Uint8Array): void {
    this.total += chunk.byteLength;
    const room = this.limit - this.#kept;
    if (room <= 0) return;
    const part = chunk.byteLength <= room ? chunk : chunk.subarray(0, room);
    // Copy: stream-extra may reuse the buffer it handed us.
    this.#chunks.push(part.slice());
    this.#kept += part.byteLength;
  }

  bytes(): Uint8Array {
    return Buffer.concat(this.#chunks);
  }
}

/** Reads `stream` to its end into `sink`. */
export async function drainInto(
  stream: ReadableStream<Uint8Array>,
  sink: { push(chunk: Uint8Array): void },
): Promise<void> {
  const reader = stream.getReader();
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) return;
      sink.push(value);
    }
  } finally {
    reader.releaseLock();
  }
}

/** Quotes one argument for the device's /system/bin/sh (mksh): '…' with ' as '\''. */
export function shellQuote(value: string): string {
  return `'${value.replaceAll("'", `'\\''`)}'`;
}
