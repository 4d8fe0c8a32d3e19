import { h264ParseConfiguration } from '@yume-chan/scrcpy';
import { NAL_AUD, NAL_IDR, NAL_PPS, NAL_SPS, nalType, splitAnnexB } from '../h264.js';
import type { FrameInfo, RtpSourceConfig } from '../media-sink.js';
import { h264Payloads, keyFramePayloads } from './h264-packetizer.js';
import { RtpStream, RtpTimeline } from './rtp-stream.js';

export interface VideoSize {
  readonly width: number;
  readonly height: number;
}

const epochMs = (performanceMs: number): number => performance.timeOrigin + performanceMs;

/**
 * The video RTP source across scrcpy sessions: keeps the encoder's latest SPS/PPS and sends them
 * (one STAP-A) ahead of every IDR, since MediaCodec emits them only once per encoder start; one
 * SSRC, one sequence, one 90 kHz timeline for as long as the ingest lives.
 */
export class VideoRtp {
  readonly #stream: RtpStream;
  readonly #timeline = new RtpTimeline(90_000);
  readonly #maxPayload: number;
  readonly #send: (packet: Uint8Array) => void;
  #parameterSets: Uint8Array[] = [];
  #size: VideoSize | undefined;
  /** Smallest (arrival − PTS) of the session, ms: maps the phone's clock onto this host's. */
  #offsetMs: number | undefined;

  constructor(source: RtpSourceConfig, maxPayload: number, send: (packet: Uint8Array) => void) {
    this.#stream = new RtpStream(source.ssrc, source.payloadType);
    this.#maxPayload = maxPayload;
    this.#send = send;
  }

  get size(): VideoSize | undefined {
    return this.#size;
  }

  /** A new scrcpy session: its PTS start on another clock. */
  restart(): void {
    this.#timeline.restart();
    this.#offsetMs = undefined;
  }

  /** An encoder (re)start's SPS/PPS; returns the video size they describe. */
  config(data: Uint8Array): VideoSize {
    const nals = splitAnnexB(data);
    const sps = nals.filter((nal) => nalType(nal) === NAL_SPS);
    const pps = nals.filter((nal) => nalType(nal) === NAL_PPS);
    this.#parameterSets = [...sps, ...pps];
    const { croppedWidth, croppedHeight } = h264ParseConfiguration(data);
    this.#size = { width: croppedWidth, height: croppedHeight };
    return this.#size;
  }

  /** Packetizes and sends one access unit. */
  frame(frame: { pts: bigint; keyframe: boolean; data: Uint8Array }, arrivedMs: number): FrameInfo {
    // Access unit delimiters mean nothing over RTP (the marker bit ends a frame).
    const nals = splitAnnexB(frame.data).filter((nal) => nalType(nal) !== NAL_AUD);
    const keyframe = frame.keyframe || nals.some((nal) => nalType(nal) === NAL_IDR);
    const payloads = keyframe
      ? keyFramePayloads(this.#parameterSets, nals, this.#maxPayload)
      : h264Payloads(nals, this.#maxPayload);
    const rtpTimestamp = this.#timeline.timestamp(frame.pts, arrivedMs);
    for (const [i, payload] of payloads.entries()) {
      this.#send(this.#stream.packet(payload, rtpTimestamp, i === payloads.length - 1));
    }
    const ptsMs = Number(frame.pts) / 1000;
    const receivedTimeMs = epochMs(arrivedMs);
    this.#offsetMs = Math.min(this.#offsetMs ?? Number.POSITIVE_INFINITY, receivedTimeMs - ptsMs);
    return {
      pts: frame.pts,
      captureTimeMs: ptsMs + this.#offsetMs,
      receivedTimeMs,
      rtpTimestamp,
      bytes: frame.data.byteLength,
      keyframe,
      packets: payloads.length,
    };
  }
}
