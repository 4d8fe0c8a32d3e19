import type { ByteReader } from '../byte-reader.js';

/** shell protocol v2 packet ids (adb's shell_protocol.h). */
export const ShellPacketId = {
  Stdin: 0,
  Stdout: 1,
  Stderr: 2,
  Exit: 3,
  CloseStdin: 4,
  WindowSizeChange: 5,
} as const;

/** `[id u8][length u32le][payload]` */
export function encodeShellPacket(id: number, payload: Uint8Array): Uint8Array {
  const out = new Uint8Array(5 + payload.byteLength);
  out[0] = id;
  new DataView(out.buffer).setUint32(1, payload.byteLength, true);
  out.set(payload, 5);
  return out;
}

export interface ShellPacket {
  id: number;
  payload: Uint8Array;
}

/** Next packet from the host, or undefined when the stream ended between packets. */
export async function readShellPacket(reader: ByteReader): Promise<ShellPacket | undefined> {
  const first = await reader.readUpTo(5);
  if (!first) return undefined;
  const header =
    first.byteLength === 5 ? first : concatBytes(first, await reader.readExactly(5 - first.byteLength));
  const length = new DataView(header.buffer, header.byteOffset, 5).getUint32(1, true);
  return { id: header[0]!, payload: await reader.readExactly(length) };
}

function concatBytes(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.byteLength + b.byteLength);
  out.set(a);
  out.set(b, a.byteLength);
  return out;
}
