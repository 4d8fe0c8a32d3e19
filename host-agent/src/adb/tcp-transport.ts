import { connect, type Socket } from 'node:net';
import { type AdbDaemonConnection, AdbPacket, AdbPacketSerializeStream } from '@yume-chan/adb';
// stream-extra's stream classes, not the global ones: their typings are what @yume-chan/adb expects.
import { Consumable, pipeFrom, type ReadableStream, StructDeserializeStream } from '@yume-chan/stream-extra';
import { socketReadable } from '../virtual-phone/net-transport.js';

export interface AdbTcpConnection {
  /** What `AdbDaemonTransport.authenticate` takes. */
  connection: AdbDaemonConnection;
  socket: Socket;
  close(): void;
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

  // One chunk read ahead at most (a stream's default). stream-extra's ReadableStream is the global
  // class under the typings @yume-chan/adb expects, so only the type changes here.
  const bytes = socketReadable(socket, 1) as unknown as ReadableStream<Uint8Array>;

  const sink = new Consumable.WritableStream<Uint8Array>({
    write(chunk) {
      // On a dead connection packets are dropped rather than rejected: @yume-chan/adb sends some
      // (OKAY, CLSE) without awaiting them, and the readable side already reports the loss.
      if (socket.destroyed) return;
      return new Promise<void>((resolve) => {
        socket.write(chunk, (error) => {
          if (error) socket.destroy(error);
          resolve();
        });
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
    readable: bytes.pipeThrough(new StructDeserializeStream(AdbPacket)),
    writable: pipeFrom(sink, new AdbPacketSerializeStream()),
  };
  return { connection, socket, close: () => socket.destroy() };
}
