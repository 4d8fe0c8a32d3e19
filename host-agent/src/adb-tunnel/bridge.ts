// One TCP socket and one WebSocket carrying the same byte stream: each binary message becomes a
// socket write and each socket read a binary message, as is (no copy, no framing of our own). Each
// side is paused while the other cannot take more (the socket's write buffer full, the WebSocket's
// send buffer over a bound), so neither end can make the bridge buffer without limit. Used by the
// agent's tunnel endpoint (client WebSocket <-> phone adbd) and by the CLI (local adb <-> agent).
// Written here rather than with `ws`'s createWebSocketStream, a Duplex that takes the next chunk only
// once the previous send was flushed and counts nothing: this keeps up to highWaterMark bytes in
// flight and reports each side's bytes.
import type { Socket } from 'node:net';
import type { WebSocket } from 'ws';

export type BridgeSide = 'socket' | 'websocket';

export interface BridgeOptions {
  /** WebSocket bytes queued before the socket is paused (default 1 MiB). */
  readonly highWaterMark?: number;
  /** Bytes written to the socket (from the WebSocket), per message. */
  onToSocket?(bytes: number): void;
  /** Bytes read from the socket (sent on the WebSocket), per chunk. */
  onFromSocket?(bytes: number): void;
  /**
   * One side ended (closed, failed, or broke the protocol: a text message); called once per side at
   * most. The caller closes the other side as it sees fit.
   */
  onEnd(side: BridgeSide, error?: Error): void;
}

export function bridgeWebSocket(ws: WebSocket, socket: Socket, options: BridgeOptions): void {
  const highWaterMark = options.highWaterMark ?? 1 << 20;
  // Small adb packets (shell keystrokes, OKAY) go out at once on both legs.
  socket.setNoDelay(true);
  (ws as unknown as { _socket?: Socket })._socket?.setNoDelay(true);
  const ended = new Set<BridgeSide>();
  const end = (side: BridgeSide, error?: Error) => {
    if (ended.has(side)) return;
    ended.add(side);
    options.onEnd(side, error);
  };
  ws.on('message', (data: Buffer, isBinary) => {
    if (!isBinary) {
      end('websocket', new Error('the tunnel carries binary messages only'));
      return;
    }
    options.onToSocket?.(data.length);
    if (!socket.write(data)) ws.pause();
  });
  socket.on('drain', () => ws.resume());
  let paused = false;
  const sent = () => {
    if (paused && ws.bufferedAmount < highWaterMark / 2) {
      paused = false;
      socket.resume();
    }
  };
  socket.on('data', (chunk: Buffer) => {
    options.onFromSocket?.(chunk.length);
    ws.send(chunk, { binary: true }, sent);
    if (!paused && ws.bufferedAmount >= highWaterMark) {
      paused = true;
      socket.pause();
    }
  });
  socket.on('end', () => end('socket'));
  socket.on('error', (error) => end('socket', error));
  socket.on('close', () => end('socket'));
  ws.on('close', () => end('websocket'));
  ws.on('error', (error) => end('websocket', error));
}
