import type { Socket } from 'node:net';
import type { ByteTransport } from './transport.js';

/** Adapts a node:net socket to web streams, pausing the socket while the reader lags behind. */
export function netSocketTransport(socket: Socket): ByteTransport {
  socket.setNoDelay(true);
  const readable = socketReadable(socket, 16);
  const writable = new WritableStream<Uint8Array>({
    write(chunk) {
      return new Promise<void>((resolve, reject) => {
        if (socket.destroyed) {
          reject(new Error('socket closed'));
          return;
        }
        socket.write(chunk, (error) => (error ? reject(error) : resolve()));
      });
    },
    close() {
      socket.end();
    },
    abort() {
      socket.destroy();
    },
  });
  return { readable, writable, destroy: () => socket.destroy() };
}

/**
 * The socket's bytes as a web stream that ends when the socket does and errors with it; the socket
 * is paused while `highWaterMark` chunks wait unread, and destroyed when the reader cancels.
 */
export function socketReadable(socket: Socket, highWaterMark: number): ReadableStream<Uint8Array> {
  return new ReadableStream<Uint8Array>(
    {
      start(controller) {
        socket.on('data', (chunk: Buffer) => {
          controller.enqueue(new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength));
          if ((controller.desiredSize ?? 0) <= 0) socket.pause();
        });
        const end = (): void => {
          try {
            controller.close();
          } catch {
            // already closed, or errored by 'error'
          }
        };
        socket.on('end', end);
        socket.on('close', end);
        socket.on('error', (error) => {
          try {
            controller.error(error);
          } catch {
            // already closed
          }
        });
      },
      pull() {
        socket.resume();
      },
      cancel() {
        socket.destroy();
      },
    },
    { highWaterMark },
  );
}
