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

/**
 * Incremental decoder: feed it whatever the carrier delivers, take whole packets out. A header that
 * claims more than `maxPayload()` bytes is refused at once, as adbd refuses it (it closes the
 * transport): the payload is never waited for nor buffered. Chunks are kept as they came and
 * joined once per packet, so a large payload costs one copy, not one per chunk.
 */
export class PacketDecoder {
  readonly #maxPayload: () => number;
  #chunks: Uint8Array[] = [];
  #length = 0;

  constructor(maxPayload: () => number = () => DEVICE_MAX_PAYLOAD) {
    this.#maxPayload = maxPayload;
  }

  push(chunk: Uint8Array): AdbPacket[] {
    this.#chunks.push(chunk);
    this.#length += chunk.byteLength;
    const packets: AdbPacket[] = [];
    while (this.#length >= HEADER_LENGTH) {
      const head = this.#take(HEADER_LENGTH, false);
      const view = new DataView(head.buffer, head.byteOffset, HEADER_LENGTH);
      const command = view.getUint32(0, true);
      const length = view.getUint32(12, true);
      const magic = view.getUint32(20, true);
      if (magic !== (command ^ 0xffffffff) >>> 0) {
        throw new AdbPacketError(
          `bad packet magic 0x${magic.toString(16)} for command 0x${command.toString(16)}`,
        );
      }
      const max = this.#maxPayload();
      if (length > max) {
        throw new AdbPacketError(
          `${commandName(command)} packet claims a ${length}-byte payload, more than the negotiated maximum of ${max}`,
        );
      }
      if (this.#length < HEADER_LENGTH + length) break;
      const whole = this.#take(HEADER_LENGTH + length, true);
      packets.push({
        command,
        arg0: view.getUint32(4, true),
        arg1: view.getUint32(8, true),
        payload: whole.slice(HEADER_LENGTH),
      });
    }
    return packets;
  }

  /** The first `n` buffered bytes as one array (joined if split); `consume` drops them. */
  #take(n: number, consume: boolean): Uint8Array {
    let first = this.#chunks[0]!;
    if (first.byteLength < n) {
      first = concatAll(this.#chunks, this.#length);
      this.#chunks = [first];
    }
    if (!consume) return first.subarray(0, n);
    const rest = first.subarray(n);
    this.#chunks[0] = rest;
    if (rest.byteLength === 0) this.#chunks.shift();
    this.#length -= n;
    return first.subarray(0, n);
  }
}

function concatAll(chunks: readonly Uint8Array[], length: number): Uint8Array {
  const out = new Uint8Array(length);
  let offset = 0;
  for (const chunk of chunks) {
    out.set(chunk, offset);
    offset += chunk.byteLength;
  }
  return out;
}

export function commandName(command: number): string {
  return String.fromCharCode(command & 0xff, (command >> 8) & 0xff, (command >> 16) & 0xff, command >>> 24);
}
