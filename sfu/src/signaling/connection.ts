// One signaling socket: reads requests one at a time (a request's answer goes out before the next
// is read, so a viewer cannot race its own requests), checks their order and hands them to the
// sfu. Anything wrong closes this socket alone with a code from close-codes.ts.
import type { Logger } from 'pino';
import type { WebSocket } from 'ws';
import { CloseCode, SignalClose } from '../close-codes.js';
import { badMessage, MAX_SIGNAL_BYTES, parseRequest, type Request } from './protocol.js';

/** What a connection needs from the sfu. */
export interface ConnectionHandler {
  /** Answers a request; throws SignalClose to close the socket (and end its session, if any). */
  handle(connection: SignalConnection, request: Request): Promise<unknown>;
  /** A request failed: close the socket, ending its session, if any. */
  fail(connection: SignalConnection, error: SignalClose): void;
  /** The socket closed, whoever closed it. */
  closed(connection: SignalConnection): void;
}

export class SignalConnection {
  readonly socket: WebSocket;
  readonly log: Logger;
  readonly remoteAddress: string | undefined;
  /** Answered pings since the last keep-alive round. */
  alive = true;
  /** The viewer broke the WebSocket protocol (ws closed the socket, e.g. 1009): not a mere drop. */
  brokeProtocol = false;
  #queue: Promise<void> = Promise.resolve();
  #closing = false;
  readonly #handler: ConnectionHandler;

  constructor(socket: WebSocket, handler: ConnectionHandler, log: Logger, remoteAddress: string | undefined) {
    this.socket = socket;
    this.#handler = handler;
    this.log = log;
    this.remoteAddress = remoteAddress;
    socket.on('message', (data, isBinary) => {
      if (this.#closing) return;
      if (isBinary) {
        this.#handler.fail(this, badMessage('messages must be text frames'));
        return;
      }
      const raw = Buffer.isBuffer(data)
        ? data
        : Buffer.concat(Array.isArray(data) ? data : [Buffer.from(data)]);
      if (raw.byteLength > MAX_SIGNAL_BYTES) {
        this.#handler.fail(this, badMessage(`a message must be at most ${MAX_SIGNAL_BYTES} bytes`));
        return;
      }
      this.#queue = this.#queue.then(() => this.#dispatch(raw.toString('utf8')));
    });
    socket.on('pong', () => {
      this.alive = true;
    });
    socket.on('error', (error) => {
      // ws emits this for protocol errors only (an oversize frame, invalid UTF-8) and closes the
      // socket itself with the matching code.
      this.brokeProtocol = true;
      log.info({ err: error }, 'signaling socket broke the protocol');
    });
    socket.on('close', () => {
      this.#closing = true;
      this.#handler.closed(this);
    });
  }

  /** Whether the sfu has closed (or is closing) this socket. */
  get closing(): boolean {
    return this.#closing;
  }

  /** Sends an event (no id) to the viewer. */
  event(name: string, fields: Record<string, unknown>): void {
    if (!this.#closing) this.socket.send(JSON.stringify({ event: name, ...fields }));
  }

  /** Closes the socket with a code and reason; later messages are ignored. */
  close(close: SignalClose): void {
    if (this.#closing) return;
    this.#closing = true;
    this.log.info(
      { code: close.code, reason: close.reason, detail: close.message },
      'closing signaling socket',
    );
    this.socket.close(close.code, close.frameReason);
    // A viewer that does not answer the close frame is cut.
    setTimeout(() => this.socket.terminate(), 2000).unref();
  }

  async #dispatch(raw: string): Promise<void> {
    if (this.#closing) return;
    try {
      const request = parseRequest(raw);
      const result = await this.#handler.handle(this, request);
      if (!this.#closing) this.socket.send(JSON.stringify({ id: request.id, result: result ?? {} }));
    } catch (error) {
      if (this.#closing) return;
      if (error instanceof SignalClose) {
        if (error.cause) this.log.info({ err: error.cause }, 'request refused');
        this.#handler.fail(this, error);
      } else {
        this.log.error({ err: error }, 'signaling request failed');
        this.#handler.fail(this, new SignalClose(CloseCode.INTERNAL, 'internal error'));
      }
    }
  }
}
