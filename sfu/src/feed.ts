// What the sfu asks of whoever has the phone's media (the host agent's screen ingest): RTP in,
// key frames and input out. The sfu opens a feed when a phone's first viewer joins and closes it
// when the room's grace after the last viewer ends.
import type { ViewerInput } from './input.js';
import type { FrameTiming } from './latency.js';

/** Where the feed pushes RTP: one packet per call, header included, on the SSRCs it was given. */
export interface MediaSink {
  sendVideoRtp(packet: Uint8Array): void;
  sendAudioRtp(packet: Uint8Array): void;
}

/** One RTP source the feed must send on (what the sfu declared to mediasoup). */
export interface RtpSource {
  readonly ssrc: number;
  readonly payloadType: number;
}

export interface VideoSize {
  readonly width: number;
  readonly height: number;
}

/** Everything a feed is opened with. */
export interface FeedWiring {
  readonly sink: MediaSink;
  /** H.264, packetization-mode 1, 90 kHz. */
  readonly video: RtpSource;
  /** Opus, 48 kHz stereo. */
  readonly audio: RtpSource;
  /** The phone's clipboard changed (or a get-clipboard was answered): sent to CONTROL viewers. */
  onClipboard(text: string): void;
  /** The video size changed (first frame, rotation): sent to every viewer. */
  onVideoSize(size: VideoSize): void;
  /**
   * A video frame was sent: its RTP timestamp and when the phone captured it, in ms on this host's
   * clock (`performance.timeOrigin + performance.now()`). Glass-to-glass latency starts there.
   */
  onFrame(frame: FrameTiming): void;
}

/** One phone's media while it is watched. */
export interface Feed {
  /** A viewer needs a picture now (a new consumer, PLI or FIR). Cheap to call often. */
  requestKeyframe(): void;
  /** Checked input from a CONTROL viewer, in arrival order. */
  input(message: ViewerInput): Promise<void>;
  videoSize(): VideoSize | undefined;
  close(): void | Promise<void>;
}

/**
 * Opens feeds by device id. Throw DeviceUnavailableError (its message is shown to the viewer) when
 * the phone cannot be streamed; any other error refuses the join as internal.
 */
export interface FeedProvider {
  open(deviceId: string, wiring: FeedWiring): Feed | Promise<Feed>;
}
