/**
 * Where ingest delivers the phone's media as RTP packets (the sfu's in-process producer side).
 * One packet per call, header included; the SSRCs and payload types are the ones the ingest was
 * configured with, so the sfu can declare them to mediasoup.
 */
export interface MediaSink {
  sendVideoRtp(packet: Uint8Array): void;
  sendAudioRtp(packet: Uint8Array): void;
}

/** One RTP source the sink receives. */
export interface RtpSourceConfig {
  readonly ssrc: number;
  readonly payloadType: number;
}

/** A video frame as it left the agent, for telemetry (glass-to-glass latency starts here). */
export interface FrameInfo {
  /** The phone's presentation time, µs on the phone's capture clock. */
  readonly pts: bigint;
  /**
   * When the phone captured it, in ms on this host's clock (performance.timeOrigin +
   * performance.now(), i.e. Unix epoch ms with sub-ms precision): the PTS shifted by the smallest
   * (arrival − PTS) seen in the session, so it is exact up to the fastest frame's transit time.
   */
  readonly captureTimeMs: number;
  /** When its last byte was read off the scrcpy socket, same clock. */
  readonly receivedTimeMs: number;
  /** The 90 kHz RTP timestamp its packets carry. */
  readonly rtpTimestamp: number;
  /** Access unit size in bytes (Annex-B, as the phone sent it). */
  readonly bytes: number;
  readonly keyframe: boolean;
  /** RTP packets sent for it (parameter sets included before a key frame). */
  readonly packets: number;
}
