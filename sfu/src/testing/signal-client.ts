// A viewer's signaling socket from Node, for tests: requests with ids, answers matched by id,
// events kept in order, and how the socket closed.
import { type ClientOptions, WebSocket } from 'ws';

export interface CloseInfo {
  readonly code: number;
  readonly reason: string;
}

export class SignalClient {
  readonly socket: WebSocket;
  /** Events (`{ event, ... }`) received so far. */
  readonly events: Record<string, unknown>[] = [];
  /** Resolves when the socket closes, with the sfu's code and reason. */
  readonly closed: Promise<CloseInfo>;
  #nextId = 1;
  readonly #pending = new Map<number, { resolve(v: unknown): void; reject(e: Error): void }>();
  #close: CloseInfo | undefined;

  private constructor(socket: WebSocket) {
    this.socket = socket;
    this.closed = new Promise((resolve) => {
      socket.on('close', (code, reason) => {
        this.#close = { code, reason: reason.toString('utf8') };
        for (const p of this.#pending.values())
          p.reject(new Error(`socket closed ${code} ${this.#close.reason}`));
        this.#pending.clear();
        resolve(this.#close);
      });
    });
    socket.on('message', (data) => {
      const message = JSON.parse(String(data)) as { id?: number; result?: unknown; event?: string };
      if (message.id === undefined) {
        this.events.push(message as Record<string, unknown>);
        return;
      }
      const pending = this.#pending.get(message.id);
      this.#pending.delete(message.id);
      pending?.resolve(message.result);
    });
    socket.on('error', () => {});
  }

  static async connect(url: string, options: ClientOptions = {}): Promise<SignalClient> {
    const socket = new WebSocket(url, options);
    const client = new SignalClient(socket);
    await new Promise<void>((resolve, reject) => {
      socket.once('open', () => resolve());
      socket.once('error', reject);
    });
    return client;
  }

  /** How the socket closed, or undefined while it is open. */
  get closeInfo(): CloseInfo | undefined {
    return this.#close;
  }

  /** Sends a request and resolves with its result; rejects if the socket closes first. */
  request<T = Record<string, unknown>>(type: string, fields: Record<string, unknown> = {}): Promise<T> {
    const id = this.#nextId++;
    return new Promise<T>((resolve, reject) => {
      this.#pending.set(id, { resolve: resolve as (v: unknown) => void, reject });
      this.socket.send(JSON.stringify({ id, type, ...fields }));
    });
  }

  /** Sends raw text (malformed messages). */
  sendRaw(data: string | Buffer): void {
    this.socket.send(data);
  }

  close(): void {
    this.socket.close();
  }
}
