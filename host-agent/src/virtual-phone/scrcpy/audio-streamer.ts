import type { ServiceSocket } from '../adb/service-socket.js';
import { OPUS_PACKET_US, type OpusStream } from './opus-fixture.js';
import { type StreamClock, sleepUntil } from './stream-clock.js';
import { mediaPacket, SCRCPY_CODEC_OPUS } from './video-streamer.js';

export interface AudioStreamOptions {
  clock: StreamClock;
  /** The phone's Android SDK level: audio capture needs 30 (Android 11) or later. */
  sdk: number;
  audioCodec: string;
  sendCodecMeta: boolean;
  sendFrameMeta: boolean;
  signal: AbortSignal;
  /** The server's console (Ln.w / Ln.e). */
  log(level: 'WARN' | 'ERROR', message: string): Promise<void>;
}

/**
 * AudioEncoder over the recording: Android before 11 cannot capture audio, so the stream is
 * disabled (codec id 0) as the real server does; only Opus is encoded here (other codecs fail
 * like a missing encoder, codec id 1). Otherwise the codec id, the OpusHead as the config packet,
 * then one 20 ms packet per 20 ms, each stamped with the capture time of its first sample and
 * sent once its 20 ms are recorded. The recording loops.
 */
export async function streamAudio(
  socket: ServiceSocket,
  sound: OpusStream,
  options: AudioStreamOptions,
): Promise<void> {
  const { clock, signal } = options;
  if (options.sdk < 30) {
    await options.log('WARN', 'Audio disabled: it is not supported before Android 11');
    await socket.write(new Uint8Array(4));
    return;
  }
  if (options.audioCodec !== 'opus') {
    await options.log('ERROR', `Could not create audio encoder for ${options.audioCodec}`);
    await socket.write(Uint8Array.of(0, 0, 0, 1));
    return;
  }
  if (options.sendCodecMeta) {
    const meta = Buffer.alloc(4);
    meta.writeUInt32BE(SCRCPY_CODEC_OPUS, 0);
    await socket.write(meta);
  }
  await socket.write(mediaPacket(sound.head, 0n, { config: true }, options.sendFrameMeta));
  const packetMs = OPUS_PACKET_US / 1000;
  let captureMs = clock.nowMs();
  for (let n = 0; !signal.aborted && !socket.isClosed; n++) {
    await sleepUntil(clock.at(captureMs + packetMs) - performance.now(), signal);
    if (signal.aborted) return;
    const packet = sound.packets[n % sound.packets.length]!;
    await socket.write(mediaPacket(packet, clock.toPtsUs(captureMs), {}, options.sendFrameMeta));
    captureMs += packetMs;
  }
}
