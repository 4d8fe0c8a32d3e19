import { AdbCommand } from './packet.js';
import { type ServiceSocket, StreamClosedError } from './service-socket.js';

export interface StreamSink {
  send(command: number, arg0: number, arg1: number, payload?: Uint8Array): Promise<void>;
  readonly maxPayload: number;
  forget(localId: number): void;
}

/**
 * Device end of one ADB stream. ADB allows one WRTE in flight per stream: the next one waits for
 * the host's OKAY. Incoming data is acknowledged only when the service reads it, so a slow service
 * slows the host down instead of buffering without bound.
 */
export class DeviceStream implements ServiceSocket {
  readonly #sink: StreamSink;
  readonly #incoming: Uint8Array[] = [];
  #wakeReader: (() => void) | undefined;
  #wakeWriter: (() => void) | undefined;
  #awaitingAck = false;
  #writeChain: Promise<void> = Promise.resolve();
  #closed = false;
  readonly #abort = new AbortController();

  constructor(
    readonly localId: number,
    readonly remoteId: number,
    readonly service: string,
    sink: StreamSink,
  ) {
    this.#sink = sink;
  }

  get isClosed(): boolean {
    return this.#closed;
  }

  get signal(): AbortSignal {
    return this.#abort.signal;
  }

  /** WRTE from the host. */
  deliver(data: Uint8Array): void {
    this.#incoming.push(data);
    this.#wake();
  }

  /** OKAY from the host: the previous WRTE was consumed. */
  acknowledge(): void {
    this.#awaitingAck = false;
    this.#wake();
  }

  /** CLSE from the host (or the connection went away). */
  remoteClose(connectionAlive: boolean): void {
    if (this.#closed) return;
    this.#markClosed();
    if (connectionAlive) void this.#sink.send(AdbCommand.Close, this.localId, this.remoteId).catch(() => {});
  }

  async read(): Promise<Uint8Array | undefined> {
    for (;;) {
      const chunk = this.#incoming.shift();
      if (chunk) {
        if (!this.#closed) void this.#sink.send(AdbCommand.Okay, this.localId, this.remoteId).catch(() => {});
        return chunk;
      }
      if (this.#closed) return undefined;
      await new Promise<void>((resolve) => {
        this.#wakeReader = resolve;
      });
    }
  }

  write(data: Uint8Array): Promise<void> {
    const result = this.#writeChain.then(() => this.#writeNow(data));
    this.#writeChain = result.catch(() => {});
    return result;
  }

  async #writeNow(data: Uint8Array): Promise<void> {
    const max = this.#sink.maxPayload;
    for (let offset = 0; offset < data.byteLength; offset += max) {
      while (this.#awaitingAck && !this.#closed) {
        await new Promise<void>((resolve) => {
          this.#wakeWriter = resolve;
        });
      }
      if (this.#closed) throw new StreamClosedError(`stream ${this.service} is closed`);
      this.#awaitingAck = true;
      await this.#sink.send(
        AdbCommand.Write,
        this.localId,
        this.remoteId,
        data.subarray(offset, offset + max),
      );
    }
  }

  async close(): Promise<void> {
    await this.#writeChain;
    if (this.#closed) return;
    this.#markClosed();
    await this.#sink.send(AdbCommand.Close, this.localId, this.remoteId).catch(() => {});
  }

  #markClosed(): void {
    this.#closed = true;
    this.#sink.forget(this.localId);
    this.#abort.abort();
    this.#wake();
  }

  #wake(): void {
    const reader = this.#wakeReader;
    const writer = this.#wakeWriter;
    this.#wakeReader = undefined;
    this.#wakeWriter = undefined;
    reader?.();
    writer?.();
  }
}
