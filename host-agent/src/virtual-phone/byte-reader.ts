import type { ByteSource } from './adb/service-socket.js';

export class EndOfStreamError extends Error {
  override readonly name = 'EndOfStreamError';
}

/** Reads exact byte counts out of a chunked source (ADB payloads split protocol frames anywhere). */
export class ByteReader implements ByteSource {
  readonly #source: ByteSource;
  #buffer: Uint8Array = new Uint8Array(0);
  #ended = false;

  constructor(source: ByteSource) {
    this.#source = source;
  }

  /** Whatever is buffered, else the next chunk; undefined at the end. */
  async read(): Promise<Uint8Array | undefined> {
    if (this.#buffer.byteLength > 0) {
      const out = this.#buffer;
      this.#buffer = new Uint8Array(0);
      return out;
    }
    if (this.#ended) return undefined;
    const chunk = await this.#source.read();
    if (!chunk) this.#ended = true;
    return chunk;
  }

  /** Up to `length` bytes (fewer only at the end); undefined at the end. */
  async readUpTo(length: number): Promise<Uint8Array | undefined> {
    const chunk = await this.read();
    if (!chunk) return undefined;
    if (chunk.byteLength > length) this.#buffer = chunk.subarray(length);
    return chunk.subarray(0, length);
  }

  async readExactly(length: number): Promise<Uint8Array> {
    if (this.#buffer.byteLength >= length) {
      const out = this.#buffer.subarray(0, length);
      this.#buffer = this.#buffer.subarray(length);
      return out;
    }
    const out = new Uint8Array(length);
    let filled = 0;
    while (filled < length) {
      const chunk = await this.readUpTo(length - filled);
      if (!chunk) throw new EndOfStreamError(`stream ended after ${filled} of ${length} bytes`);
      out.set(chunk, filled);
      filled += chunk.byteLength;
    }
    return out;
  }

  /** Puts bytes back in front, for parsers that peek (a message type byte, say). */
  unread(bytes: Uint8Array): void {
    this.#buffer = this.#buffer.byteLength === 0 ? bytes : Buffer.concat([bytes, this.#buffer]);
  }

  /** Everything until the end. */
  async readAll(): Promise<Uint8Array> {
    const chunks: Uint8Array[] = [];
    for (let chunk = await this.read(); chunk; chunk = await this.read()) chunks.push(chunk);
    return Buffer.concat(chunks);
  }
}

/** A source fed by pushes, for demultiplexed streams such as shell v2 stdin. */
export class ByteQueue implements ByteSource {
  readonly #chunks: Uint8Array[] = [];
  #ended = false;
  #wake: (() => void) | undefined;

  push(chunk: Uint8Array): void {
    if (this.#ended) return;
    this.#chunks.push(chunk);
    this.#notify();
  }

  end(): void {
    this.#ended = true;
    this.#notify();
  }

  async read(): Promise<Uint8Array | undefined> {
    for (;;) {
      const chunk = this.#chunks.shift();
      if (chunk) return chunk;
      if (this.#ended) return undefined;
      await new Promise<void>((resolve) => {
        this.#wake = resolve;
      });
    }
  }

  #notify(): void {
    const wake = this.#wake;
    this.#wake = undefined;
    wake?.();
  }
}
