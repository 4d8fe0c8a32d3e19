// The sfu's signaling socket (sfu/README.md, "Signaling protocol"): JSON requests answered in
// order by id, events without an id, and a close code with `REASON: message` when it ends.

export type Json = Record<string, unknown>;

export class SignalClosedError extends Error {
  constructor(
    readonly code: number,
    readonly reason: string,
  ) {
    super(`signaling closed ${code} ${reason}`);
  }
}

export class Signal {
  readonly #ws: WebSocket;
  readonly #pending = new Map<number, { resolve(v: Json): void; reject(e: Error): void }>();
  readonly #opened: Promise<void>;
  #id = 1;
  /** How the socket closed, once it has. */
  closed: { code: number; reason: string } | undefined;

  constructor(url: string, onEvent: (event: Json) => void, onClose: (code: number, reason: string) => void) {
    this.#ws = new WebSocket(url);
    this.#opened = new Promise((resolve, reject) => {
      this.#ws.onopen = () => resolve();
      this.#ws.onerror = () => reject(new SignalClosedError(1006, ''));
    });
    this.#opened.catch(() => undefined);
    this.#ws.onmessage = (e) => {
      let m: { id?: number; result?: Json };
      try {
        m = JSON.parse(String(e.data)) as typeof m;
      } catch {
        return;
      }
      if (m.id === undefined) {
        onEvent(m as Json);
        return;
      }
      this.#pending.get(m.id)?.resolve(m.result ?? {});
      this.#pending.delete(m.id);
    };
    this.#ws.onclose = (e) => {
      this.closed = { code: e.code, reason: e.reason };
      for (const p of this.#pending.values()) p.reject(new SignalClosedError(e.code, e.reason));
      this.#pending.clear();
      onClose(e.code, e.reason);
    };
  }

  opened(): Promise<void> {
    return this.#opened;
  }

  request(type: string, fields: Json = {}): Promise<Json> {
    if (this.closed) return Promise.reject(new SignalClosedError(this.closed.code, this.closed.reason));
    const id = this.#id++;
    return new Promise((resolve, reject) => {
      this.#pending.set(id, { resolve, reject });
      this.#ws.send(JSON.stringify({ id, type, ...fields }));
    });
  }

  close(code?: number): void {
    this.#ws.close(code);
  }
}
