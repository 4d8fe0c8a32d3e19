import type { ServiceSocket } from '../adb/service-socket.js';
import { type H264Stream, SCREEN_FIXTURE } from './h264-fixture.js';

/** scrcpy's codec ids are the codec name in ASCII, big-endian. */
export const SCRCPY_CODEC_H264 = 0x68_32_36_34;
const PACKET_FLAG_CONFIG = 1n << 63n;
const PACKET_FLAG_KEY_FRAME = 1n << 62n;

export interface VideoStreamOptions {
  sendCodecMeta: boolean;
  sendFrameMeta: boolean;
  signal: AbortSignal;
}

/** scrcpy's 12-byte frame header: pts (u64, flags in bits 63/62) and size (u32), big-endian. */
export function frameHeader(
  ptsUs: bigint,
  size: number,
  flags: { config?: boolean; keyFrame?: boolean },
): Buffer {
  const out = Buffer.alloc(12);
  let value = ptsUs;
  if (flags.config) value |= PACKET_FLAG_CONFIG;
  if (flags.keyFrame) value |= PACKET_FLAG_KEY_FRAME;
  out.writeBigUInt64BE(value, 0);
  out.writeUInt32BE(size, 8);
  return out;
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  if (ms <= 0 || signal.aborted) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms);
    function done(): void {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done, { once: true });
  });
}

/**
 * Streams the fixture in a loop at its frame rate, like MediaCodec output: a config packet first,
 * then one packet per access unit. Frames are due on a fixed schedule, so a slow reader does not
 * make the clock drift; ADB's one-packet-in-flight rule is the backpressure.
 */
export async function streamVideo(
  socket: ServiceSocket,
  stream: H264Stream,
  options: VideoStreamOptions,
): Promise<void> {
  const { signal } = options;
  if (options.sendCodecMeta) {
    const meta = Buffer.alloc(12);
    meta.writeUInt32BE(SCRCPY_CODEC_H264, 0);
    meta.writeUInt32BE(SCREEN_FIXTURE.width, 4);
    meta.writeUInt32BE(SCREEN_FIXTURE.height, 8);
    await socket.write(meta);
  }
  const packet = (
    data: Uint8Array,
    pts: bigint,
    flags: { config?: boolean; keyFrame?: boolean },
  ): Uint8Array =>
    options.sendFrameMeta ? Buffer.concat([frameHeader(pts, data.byteLength, flags), data]) : data;
  await socket.write(packet(stream.config, 0n, { config: true }));
  const intervalMs = 1000 / SCREEN_FIXTURE.fps;
  const start = performance.now();
  for (let n = 0; !signal.aborted && !socket.isClosed; n++) {
    const frame = stream.frames[n % stream.frames.length];
    if (!frame) return;
    await sleep(start + n * intervalMs - performance.now(), signal);
    if (signal.aborted) return;
    const ptsUs = BigInt(Math.round((n * 1_000_000) / SCREEN_FIXTURE.fps));
    await socket.write(packet(frame.data, ptsUs, { keyFrame: frame.keyFrame }));
  }
}
