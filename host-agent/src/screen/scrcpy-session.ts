import type { Adb } from '@yume-chan/adb';
import { AdbScrcpyClient, AdbScrcpyOptionsLatest } from '@yume-chan/adb-scrcpy';
import {
  ScrcpyCodecOptions,
  type ScrcpyControlMessageWriter,
  ScrcpyInstanceId,
  type ScrcpyMediaStreamPacket,
} from '@yume-chan/scrcpy';
import { ReadableStream } from '@yume-chan/stream-extra';
import { SCRCPY_SERVER_DEVICE_PATH } from './scrcpy-server-binary.js';

/** MediaCodecInfo.CodecProfileLevel values scrcpy passes to the encoder as `profile`. */
const AVC_PROFILE = { baseline: 1, 'constrained-baseline': 0x10000, main: 2 } as const;
export type H264Profile = keyof typeof AVC_PROFILE;

/** What the phone is asked for: only what every browser decodes. */
export interface CaptureSettings {
  /** Longest side of the video; 0 keeps the display's size. */
  readonly maxSize: number;
  readonly maxFps: number;
  readonly videoBitRate: number;
  /** H.264 profile of the encoder (browsers decode Baseline and Main, not High). */
  readonly profile: H264Profile;
  /** MediaCodecInfo.CodecProfileLevel level constant, e.g. 0x200 for 3.1; unset lets the encoder pick. */
  readonly level?: number | undefined;
  readonly audio: boolean;
  readonly audioBitRate: number;
}

export interface SessionHandlers {
  /** SPS/PPS of an encoder (re)start: at the start, after RESET_VIDEO and after a rotation. */
  videoConfig(data: Uint8Array): void;
  videoFrame(frame: { pts: bigint; keyframe: boolean; data: Uint8Array }, arrivedMs: number): void;
  audioPacket(packet: { pts: bigint; data: Uint8Array }, arrivedMs: number): void;
  clipboard(text: string): void;
  /** A line the server printed (its log). */
  serverOutput?(line: string): void;
}

/** One running scrcpy server and the streams it serves. */
export interface ScrcpySession {
  readonly controller: ScrcpyControlMessageWriter;
  /** Settles (never rejects) once the server, a stream or the connection is gone, with why. */
  readonly ended: Promise<Error>;
  close(): Promise<void>;
}

/** The options @yume-chan/adb-scrcpy serializes into the server's arguments. */
export function scrcpyOptions(settings: CaptureSettings): AdbScrcpyOptionsLatest<true> {
  return new AdbScrcpyOptionsLatest({
    // A forward tunnel: works over adbd on TCP without the reverse service.
    tunnelForward: true,
    scid: ScrcpyInstanceId.random(),
    video: true,
    videoCodec: 'h264',
    videoBitRate: settings.videoBitRate,
    videoCodecOptions: new ScrcpyCodecOptions({
      profile: AVC_PROFILE[settings.profile],
      level: settings.level,
    }),
    maxSize: settings.maxSize,
    maxFps: settings.maxFps,
    audio: settings.audio,
    audioCodec: 'opus',
    audioBitRate: settings.audioBitRate,
    control: true,
    // Phone-side clipboard changes are pushed; the server then ignores GET_CLIPBOARD.
    clipboardAutosync: true,
  });
}

const now = (): number => performance.now();

async function pump<T>(stream: ReadableStream<T>, each: (value: T) => void): Promise<never> {
  const reader = stream.getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) throw new Error('stream ended');
    each(value);
  }
}

/**
 * Pushes the server (already checked) and starts it over `adb` the way @yume-chan/adb-scrcpy does
 * (app_process with the jar on CLASSPATH, sockets through the forward tunnel), then feeds the
 * handlers until the session ends. Every stream must be read: an unread one stalls the connection.
 */
export async function startScrcpySession(
  adb: Adb,
  server: Uint8Array,
  settings: CaptureSettings,
  handlers: SessionHandlers,
): Promise<ScrcpySession> {
  await AdbScrcpyClient.pushServer(
    adb,
    new ReadableStream({
      start(controller) {
        controller.enqueue(server);
        controller.close();
      },
    }),
    SCRCPY_SERVER_DEVICE_PATH,
  );
  const client = await AdbScrcpyClient.start(adb, SCRCPY_SERVER_DEVICE_PATH, scrcpyOptions(settings));
  const controller = client.controller;
  const video = await client.videoStream;
  if (!controller || !video) {
    await client.close();
    throw new Error('scrcpy started without video or control');
  }
  const streams: Promise<never>[] = [
    pump(video.stream, (packet: ScrcpyMediaStreamPacket) => {
      if (packet.type === 'configuration') handlers.videoConfig(packet.data);
      else
        handlers.videoFrame(
          { pts: packet.pts ?? 0n, keyframe: packet.keyframe ?? false, data: packet.data },
          now(),
        );
    }),
    client.exited.then(() => {
      throw new Error('scrcpy server exited');
    }),
    adb.disconnected.then(() => {
      throw new Error('adb connection closed');
    }),
  ];
  if (client.clipboard) streams.push(pump(client.clipboard, handlers.clipboard));
  // The server's log (stdout and stderr of its shell) is read to the end: unread, the shell stream's
  // window fills after a few dozen lines and the server blocks in its next log call, with it every
  // control message after (a paste, a rotation). Its end is the server's exit, watched above.
  void pump(client.output, (line) => handlers.serverOutput?.(line)).catch(() => {});
  if (settings.audio) {
    const audio = await client.audioStream;
    // Before Android 11 (or without an encoder) the phone disables audio; video goes on.
    if (audio?.type === 'success') {
      streams.push(
        pump(audio.stream, (packet: ScrcpyMediaStreamPacket) => {
          if (packet.type === 'data')
            handlers.audioPacket({ pts: packet.pts ?? 0n, data: packet.data }, now());
        }),
      );
    }
  }
  const ended = Promise.race(streams).catch((error: unknown) =>
    error instanceof Error ? error : new Error(String(error)),
  );
  return {
    controller,
    ended,
    close: async () => {
      await Promise.resolve(client.close()).catch(() => {});
    },
  };
}
