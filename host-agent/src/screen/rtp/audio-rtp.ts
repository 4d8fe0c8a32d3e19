import type { RtpSourceConfig } from '../media-sink.js';
import { RtpStream, RtpTimeline } from './rtp-stream.js';

/**
 * The Opus RTP source (RFC 7587): one Opus packet per RTP packet, 48 kHz timestamps whatever the
 * sampling rate, the marker set on the first packet after a (re)start, as after a silence.
 */
export class AudioRtp {
  readonly #stream: RtpStream;
  readonly #timeline = new RtpTimeline(48_000);
  readonly #send: (packet: Uint8Array) => void;
  #first = true;

  constructor(source: RtpSourceConfig, send: (packet: Uint8Array) => void) {
    this.#stream = new RtpStream(source.ssrc, source.payloadType);
    this.#send = send;
  }

  restart(): void {
    this.#timeline.restart();
    this.#first = true;
  }

  packet(packet: { pts: bigint; data: Uint8Array }, arrivedMs: number): void {
    const timestamp = this.#timeline.timestamp(packet.pts, arrivedMs);
    this.#send(this.#stream.packet(packet.data, timestamp, this.#first));
    this.#first = false;
  }
}
