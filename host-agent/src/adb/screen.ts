import type { Adb } from '@yume-chan/adb';
import { AdbError } from './errors.js';
import { CappedBuffer, drainInto } from './output.js';

export interface Screenshot {
  png: Uint8Array;
  width: number;
  height: number;
}

const PNG_SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
/** A 4K RGBA frame compresses far below this; more means something other than a PNG. */
const MAX_PNG_BYTES = 64 * 1024 * 1024;

/** Width and height from a PNG's IHDR chunk, which the format requires to come first. */
export function pngDimensions(png: Uint8Array): { width: number; height: number } {
  const bytes = Buffer.from(png.buffer, png.byteOffset, png.byteLength);
  if (bytes.byteLength < 24 || !bytes.subarray(0, 8).equals(PNG_SIGNATURE)) {
    throw new AdbError(`screencap output is not a PNG (first bytes ${bytes.subarray(0, 8).toString('hex')})`);
  }
  if (bytes.toString('latin1', 12, 16) !== 'IHDR')
    throw new AdbError('screencap PNG does not start with IHDR');
  return { width: bytes.readUInt32BE(16), height: bytes.readUInt32BE(20) };
}

/** `screencap -p` over exec: raw bytes, no pty to mangle \n into \r\n as `shell:` did on old phones. */
export async function captureScreen(adb: Adb, signal?: AbortSignal): Promise<Screenshot> {
  const process = await adb.subprocess.noneProtocol.spawn(['screencap -p']);
  const kill = (): void => {
    void Promise.resolve(process.kill()).catch(() => {});
  };
  signal?.addEventListener('abort', kill, { once: true });
  const output = new CappedBuffer(MAX_PNG_BYTES);
  try {
    await Promise.all([drainInto(process.output, output), process.exited]);
  } catch (error) {
    if (signal?.aborted) throw signal.reason;
    throw error;
  } finally {
    signal?.removeEventListener('abort', kill);
  }
  signal?.throwIfAborted();
  if (output.truncated) throw new AdbError(`screencap printed over ${MAX_PNG_BYTES} bytes`);
  const png = output.bytes();
  return { png, ...pngDimensions(png) };
}
