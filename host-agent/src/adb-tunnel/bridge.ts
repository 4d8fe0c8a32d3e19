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

/**
 * Holds a socket's writes until the current turn of the event loop has delivered everything it read
 * (setImmediate runs right after the I/O phase), then sends them in one writev. A large adb write
 * (adb push sends up to 1 MiB per packet, then waits for its OKAY) arrives as several 64 KiB reads;
 * passed on one by one, each would be a syscall that wakes the next hop for a fraction of a packet,
 * and on a busy host those wake-ups, not the copies, are what a hop costs.
 */
function batcher(socket: Socket): () => void {
  let corked = false;
  const flush = () => {
    corked = false;
    socket.uncork();
  };
  return () => {
    if (corked) return;
    corked = true;
    socket.cork();
    setImmediate(flush);
  };
}

export function bridgeWebSocket(ws: WebSocket, socket: Socket, options: BridgeOptions): void {
  const highWaterMark = options.highWaterMark ?? 1 << 20;
  const wsSocket = (ws as unknown as { _socket?: Socket })._socket;
  // Small adb packets (shell keystrokes, OKAY) go out at once on both legs.
  socket.setNoDelay(true);
  wsSocket?.setNoDelay(true);
  const batchToSocket = batcher(socket);
  const batchToWebSocket = wsSocket ? batcher(wsSocket) : () => undefined;
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
    batchToSocket();
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
    batchToWebSocket();
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
