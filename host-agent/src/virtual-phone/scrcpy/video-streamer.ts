import type { ServiceSocket } from '../adb/service-socket.js';
import type { Display } from '../android/display.js';
import type { H264Stream } from './h264-fixture.js';
import type { ScreenCapture } from './screen-capture.js';
import { type StreamClock, sleepUntil } from './stream-clock.js';

/** scrcpy's codec ids are the codec name in ASCII, big-endian. */
export const SCRCPY_CODEC_H264 = 0x68_32_36_34;
export const SCRCPY_CODEC_OPUS = 0x6f_70_75_73;
const PACKET_FLAG_CONFIG = 1n << 63n;
const PACKET_FLAG_KEY_FRAME = 1n << 62n;

/** scrcpy's 12-byte frame header: pts (u64, flags in bits 63/62) and size (u32), big-endian. */
export function frameHeader(
  ptsUs: bigint,
  size: number,
  flags: { config?: boolean; keyFrame?: boolean },
): Buffer {
  const out = Buffer.alloc(12);
  // Streamer.writeFrameMeta: a config packet carries the flag alone, no PTS.
  let value = flags.config ? PACKET_FLAG_CONFIG : ptsUs;
  if (flags.keyFrame) value |= PACKET_FLAG_KEY_FRAME;
  out.writeBigUInt64BE(value, 0);
  out.writeUInt32BE(size, 8);
  return out;
}

/** One media packet as Streamer.writePacket sends it. */
export function mediaPacket(
  data: Uint8Array,
  ptsUs: bigint,
  flags: { config?: boolean; keyFrame?: boolean },
  sendFrameMeta: boolean,
): Uint8Array {
  return sendFrameMeta ? Buffer.concat([frameHeader(ptsUs, data.byteLength, flags), data]) : data;
}

export interface VideoStreamOptions {
  display: Display;
  capture: ScreenCapture;
  clock: StreamClock;
  /** 0: the display's refresh rate. */
  maxFps: number;
  sendCodecMeta: boolean;
  sendFrameMeta: boolean;
  signal: AbortSignal;
}

/** The first key frame at or after `position` (wrapping): where a restarted encoder begins. */
function keyFrameFrom(stream: H264Stream, position: number): number {
  const at = position % stream.frames.length;
  return stream.keyFrames.find((k) => k >= at) ?? stream.keyFrames[0] ?? 0;
}

/**
 * SurfaceEncoder.streamCapture over the recordings: the codec header once (codec, size of the
 * first capture), then per encoder run a config packet and frames from an IDR on, at the
 * display's rate capped by max_fps, each stamped with its capture time. A rotation or a reset
 * ends the run (as the EOS MediaCodec gets on reset) and the next one starts at the new size with
 * a key frame at the next tick. A still display sends nothing after its first frame, like an
 * encoder fed no new frames. ADB's one-packet-in-flight rule is the backpressure: a late frame is
 * skipped rather than sent in a burst, as a surface only holds the latest picture.
 */
export async function streamVideo(socket: ServiceSocket, options: VideoStreamOptions): Promise<void> {
  const { display, capture, clock, signal } = options;
  const fps = options.maxFps > 0 ? Math.min(options.maxFps, display.refreshRate) : display.refreshRate;
  const intervalMs = 1000 / fps;
  let headerWritten = false;
  let position = 0;
  let nextMs = clock.nowMs();
  while (!signal.aborted && !socket.isClosed) {
    let reset = false;
    let wake: () => void = () => {};
    let woken = new Promise<void>((resolve) => {
      wake = resolve;
    });
    const rewake = (): void => {
      wake();
      woken = new Promise<void>((resolve) => {
        wake = resolve;
      });
    };
    const onInvalidate = (): void => {
      reset = true;
      rewake();
    };
    capture.on('invalidate', onInvalidate);
    display.on('still', rewake);
    try {
      const { stream } = capture.prepare();
      if (!headerWritten && options.sendCodecMeta) {
        const meta = Buffer.alloc(12);
        meta.writeUInt32BE(SCRCPY_CODEC_H264, 0);
        meta.writeUInt32BE(stream.width, 4);
        meta.writeUInt32BE(stream.height, 8);
        await socket.write(meta);
      }
      headerWritten = true;
      await socket.write(mediaPacket(stream.config, 0n, { config: true }, options.sendFrameMeta));
      position = keyFrameFrom(stream, position);
      let sent = 0;
      while (!signal.aborted && !socket.isClosed && !reset) {
        if (display.still && sent > 0) {
          await sleepUntil(Number.POSITIVE_INFINITY, signal, woken);
          nextMs = Math.max(nextMs, clock.nowMs());
          continue;
        }
        await sleepUntil(clock.at(nextMs) - performance.now(), signal, woken);
        if (reset || signal.aborted) break;
        const late = clock.nowMs() - nextMs;
        if (late < 0) continue;
        // Behind by a frame or more (a slow reader): skip to the latest tick, staying on the grid.
        if (late >= intervalMs) nextMs += Math.floor(late / intervalMs) * intervalMs;
        const captureMs = nextMs;
        nextMs += intervalMs;
        const frame = stream.frames[position % stream.frames.length]!;
        position++;
        sent++;
        await socket.write(
          mediaPacket(
            frame.data,
            clock.toPtsUs(captureMs),
            { keyFrame: frame.keyFrame },
            options.sendFrameMeta,
          ),
        );
      }
    } finally {
      capture.off('invalidate', onInvalidate);
      display.off('still', rewake);
    }
  }
}
