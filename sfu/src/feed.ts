// What the sfu asks of whoever has the phone's media (the host agent's screen ingest): RTP in,
// key frames and input out. The sfu opens a feed when a phone's first viewer joins and closes it
// when the room's grace after the last viewer ends.
import type { StreamRightsName } from '@cphone/proto';
import type { ViewerInput } from './input.js';
import type { FrameTiming } from './latency.js';
import type { QualityPreset } from './signaling/protocol.js';

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

/** A viewer whose socket is joined, as the feed sees it. */
export interface FeedViewer {
  readonly sessionId: string;
  readonly rights: StreamRightsName;
  /** What the session asked for (`join` or `setQuality`); 'auto' when it did not say. */
  readonly quality: QualityPreset;
}

/** What mediasoup knows of the link to one viewer, sampled about once a second. */
export interface ViewerLink {
  /**
   * What the sfu may send the viewer, bits/s: the WebRtcTransport's `availableOutgoingBitrate`
   * (its transport-cc bandwidth estimate, or the viewer's REMB), capped by any outgoing limit.
   */
  readonly availableBitrate: number;
  /** Fraction of video packets lost, 0..1, from the viewer's RTCP receiver reports. */
  readonly lossFraction: number;
  /** What the sfu sent the viewer over the transport, bits/s (media, retransmissions, probes). */
  readonly sendBitrate: number;
  /** mediasoup's score of the video sent, 0..10 (10: nothing lost). */
  readonly score: number;
}

/** One phone's media while it is watched. */
export interface Feed {
  /** A viewer needs a picture now (a new consumer, PLI or FIR). Cheap to call often. */
  requestKeyframe(): void;
  /** Checked input from a CONTROL viewer, in arrival order. */
  input(message: ViewerInput): Promise<void>;
  videoSize(): VideoSize | undefined;
  close(): void | Promise<void>;
  /**
   * Optional, for adapting the encoder to the viewers (the agent's quality controller). A viewer's
   * socket joined (a new session, a rejoin) or its session asked for another quality.
   */
  setViewer?(viewer: FeedViewer): void;
  /** The viewer's socket is gone (left, dropped, replaced, ended): its link tells nothing more. */
  removeViewer?(sessionId: string): void;
  /** A look at a joined viewer's link, every `linkIntervalMs` once its video flows. */
  viewerLink?(sessionId: string, link: ViewerLink): void;
}

/**
 * Opens feeds by device id. Throw DeviceUnavailableError (its message is shown to the viewer) when
 * the phone cannot be streamed; any other error refuses the join as internal.
 */
export interface FeedProvider {
  open(deviceId: string, wiring: FeedWiring): Feed | Promise<Feed>;
}
