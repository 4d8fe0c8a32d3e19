import type { Socket } from 'node:net';
import type { AdbPacket } from '@yume-chan/adb';
import { ReadableStream } from '@yume-chan/stream-extra';

const HEADER_SIZE = 24;
/**
 * What @yume-chan/adb's handshake offers the phone in its CNXN (1 MiB, not configurable there): a
 * phone may send no larger payload, whatever it answers.
 */
export const ADB_MAX_PAYLOAD = 1024 * 1024;

/** The phone sent a header whose payload length is more than was negotiated. */
export class AdbPacketTooLargeError extends Error {
  override readonly name = 'AdbPacketTooLargeError';
  constructor(
    readonly peer: string,
    readonly payloadLength: number,
    readonly maxPayload: number,
  ) {
    super(
      `adb peer ${peer} sent a packet header claiming payloadLength=${payloadLength}, more than the maximum of ${maxPayload}; connection closed`,
    );
  }
}

/**
 * The ADB packets arriving on a TCP socket, parsed as they come: the 24-byte little-endian header
 * (command, arg0, arg1, length, checksum, magic) and its payload. Written here instead of piping
 * the bytes through @yume-chan/struct's StructDeserializeStream because that costs two stream
 * stages and a generator-driven parse per packet, the largest share of the agent's CPU while it
 * streams a phone's screen (one packet per video frame, one per 20 ms of audio). Chunks are joined
 * only once a whole packet is there; the socket is paused while `highWaterMark` packets wait.
 * A header claiming more than `maxPayload` bytes destroys the socket at once (as adbd does with a
 * host): a hostile phone cannot make the agent buffer what it announces.
 */
export function adbPacketReadable(
  socket: Socket,
  highWaterMark: number,
  maxPayload = ADB_MAX_PAYLOAD,
): ReadableStream<AdbPacket> {
  return new ReadableStream<AdbPacket>(
    {
      start(controller) {
        let chunks: Buffer[] = [];
        let length = 0;
        let need = HEADER_SIZE;
        let header: Omit<AdbPacket, 'payload'> | undefined;
        socket.on('data', (chunk: Buffer) => {
          chunks.push(chunk);
          length += chunk.byteLength;
          while (length >= need) {
            const bytes = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, length);
            chunks = [bytes];
            if (!header) {
              header = {
                command: bytes.readUInt32LE(0),
                arg0: bytes.readUInt32LE(4),
                arg1: bytes.readUInt32LE(8),
                payloadLength: bytes.readUInt32LE(12),
                checksum: bytes.readUInt32LE(16),
                magic: bytes.readInt32LE(20),
              };
              if (header.payloadLength > maxPayload) {
                const peer = `${socket.remoteAddress}:${socket.remotePort}`;
                socket.destroy(new AdbPacketTooLargeError(peer, header.payloadLength, maxPayload));
                chunks = [];
                return;
              }
              need = HEADER_SIZE + header.payloadLength;
              if (length < need) break;
            }
            const payload = bytes.subarray(HEADER_SIZE, need);
            controller.enqueue({
              ...header,
              payload: new Uint8Array(payload.buffer, payload.byteOffset, payload.byteLength),
            });
            const rest = bytes.subarray(need);
            chunks = rest.byteLength > 0 ? [rest] : [];
            length = rest.byteLength;
            header = undefined;
            need = HEADER_SIZE;
          }
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
