import { connect, type Socket } from 'node:net';
import { type AdbDaemonConnection, AdbPacketHeader, type AdbPacketInit } from '@yume-chan/adb';
// stream-extra's stream classes, not the global ones: their typings are what @yume-chan/adb expects.
import { Consumable } from '@yume-chan/stream-extra';
import { adbPacketReadable } from './packet-readable.js';

export interface AdbTcpConnection {
  /** What `AdbDaemonTransport.authenticate` takes. */
  connection: AdbDaemonConnection;
  socket: Socket;
  close(): void;
}

/**
 * Header and payload in one buffer. @yume-chan/adb's serializer emits them as two chunks because USB
 * needs the boundary; on TCP two writes would send a small packet as two segments. The copy also
 * frees the caller's payload buffer as soon as the write is queued.
 */
function frame(packet: AdbPacketInit): Uint8Array {
  const bytes = new Uint8Array(AdbPacketHeader.size + packet.payload.length);
  AdbPacketHeader.serialize({ ...packet, payloadLength: packet.payload.length }, bytes);
  bytes.set(packet.payload, AdbPacketHeader.size);
  return bytes;
}

/**
 * Opens a TCP connection to a device's adbd and frames it as ADB packets for @yume-chan/adb
 * (which, like Tango, leaves the byte carrier to the application).
 */
export async function connectAdbTcp(
  host: string,
  port: number,
  { timeoutMs = 10_000 } = {},
): Promise<AdbTcpConnection> {
  const socket = await new Promise<Socket>((resolve, reject) => {
    const s = connect({ host, port });
    const timer = setTimeout(() => {
      s.destroy();
      reject(new Error(`connecting to adbd at ${host}:${port} timed out after ${timeoutMs} ms`));
    }, timeoutMs);
    s.once('connect', () => {
      clearTimeout(timer);
      resolve(s);
    });
    s.once('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
  });
  socket.setNoDelay(true);

  // Packets written in one turn of the event loop leave in one system call: an OKAY answers every
  // WRTE, so a phone streaming its screen and sound costs one write per packet it sends, and a
  // write on loopback also runs the receiver's side of TCP. The delay is at most that turn.
  let corked = false;
  const uncork = (): void => {
    corked = false;
    socket.uncork();
  };
  const writable = new Consumable.WritableStream<AdbPacketInit>({
    write(packet) {
      // On a dead connection packets are dropped rather than rejected: @yume-chan/adb sends some
      // (OKAY, CLSE) without awaiting them, and the readable side already reports the loss.
      if (socket.destroyed) return;
      if (!corked) {
        corked = true;
        socket.cork();
        setImmediate(uncork);
      }
      const flushed = socket.write(frame(packet), (error) => {
        if (error) socket.destroy(error);
      });
      if (flushed) return;
      // Backpressure: hold the next packet until the socket's buffer drains, or the socket dies.
      return new Promise<void>((resolve) => {
        const settle = (): void => {
          socket.off('drain', settle);
          socket.off('close', settle);
          resolve();
        };
        socket.on('drain', settle);
        socket.on('close', settle);
      });
    },
    close() {
      socket.end();
    },
    abort() {
      socket.destroy();
    },
  });

  const connection: AdbDaemonConnection = {
    // A few packets read ahead, then the socket pauses (TCP flow control does the rest).
    readable: adbPacketReadable(socket, 4),
    writable,
  };
  return { connection, socket, close: () => socket.destroy() };
}
