/** ADB transport packets: a 24-byte little-endian header followed by the payload. */

function commandId(name: string): number {
  return (
    (name.charCodeAt(0) |
      (name.charCodeAt(1) << 8) |
      (name.charCodeAt(2) << 16) |
      (name.charCodeAt(3) << 24)) >>>
    0
  );
}

export const AdbCommand = {
  Connect: commandId('CNXN'),
  Auth: commandId('AUTH'),
  Open: commandId('OPEN'),
  Okay: commandId('OKAY'),
  Close: commandId('CLSE'),
  Write: commandId('WRTE'),
  StartTls: commandId('STLS'),
} as const;

export const AuthType = { Token: 1, Signature: 2, RsaPublicKey: 3 } as const;

/** Protocol version that lets both sides skip the payload checksum. */
export const ADB_VERSION_SKIP_CHECKSUM = 0x01000001;
export const ADB_VERSION_MIN = 0x01000000;
/** adbd's MAX_PAYLOAD since Android 9. */
export const DEVICE_MAX_PAYLOAD = 1024 * 1024;
export const HEADER_LENGTH = 24;

export interface AdbPacket {
  command: number;
  arg0: number;
  arg1: number;
  payload: Uint8Array;
}

export function checksum(payload: Uint8Array): number {
  let sum = 0;
  for (const byte of payload) sum += byte;
  return sum >>> 0;
}

export function encodePacket(packet: AdbPacket): Uint8Array {
  const out = new Uint8Array(HEADER_LENGTH + packet.payload.byteLength);
  const view = new DataView(out.buffer);
  view.setUint32(0, packet.command, true);
  view.setUint32(4, packet.arg0 >>> 0, true);
  view.setUint32(8, packet.arg1 >>> 0, true);
  view.setUint32(12, packet.payload.byteLength, true);
  // Older hosts verify the sum; newer ones ignore it, so always sending it costs little.
  view.setUint32(16, checksum(packet.payload), true);
  view.setUint32(20, (packet.command ^ 0xffffffff) >>> 0, true);
  out.set(packet.payload, HEADER_LENGTH);
  return out;
}

export class AdbPacketError extends Error {
  override readonly name = 'AdbPacketError';
}

/** Incremental decoder: feed it whatever the carrier delivers, take whole packets out. */
export class PacketDecoder {
  #buffer: Uint8Array = new Uint8Array(0);

  push(chunk: Uint8Array): AdbPacket[] {
    this.#buffer = this.#buffer.byteLength === 0 ? chunk : concat(this.#buffer, chunk);
    const packets: AdbPacket[] = [];
    for (;;) {
      if (this.#buffer.byteLength < HEADER_LENGTH) break;
      const view = new DataView(this.#buffer.buffer, this.#buffer.byteOffset, HEADER_LENGTH);
      const command = view.getUint32(0, true);
      const length = view.getUint32(12, true);
      const magic = view.getUint32(20, true);
      if (magic !== (command ^ 0xffffffff) >>> 0) {
        throw new AdbPacketError(
          `bad packet magic 0x${magic.toString(16)} for command 0x${command.toString(16)}`,
        );
      }
      if (this.#buffer.byteLength < HEADER_LENGTH + length) break;
      packets.push({
        command,
        arg0: view.getUint32(4, true),
        arg1: view.getUint32(8, true),
        payload: this.#buffer.slice(HEADER_LENGTH, HEADER_LENGTH + length),
      });
      this.#buffer = this.#buffer.subarray(HEADER_LENGTH + length);
    }
    return packets;
  }
}

export function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.byteLength + b.byteLength);
  out.set(a, 0);
  out.set(b, a.byteLength);
  return out;
}

export function commandName(command: number): string {
  return String.fromCharCode(command & 0xff, (command >> 8) & 0xff, (command >> 16) & 0xff, command >>> 24);
}
