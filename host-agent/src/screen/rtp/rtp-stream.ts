import { randomInt } from 'node:crypto';

/** One RTP source: its SSRC and payload type, and a sequence number that only ever counts up. */
export class RtpStream {
  readonly ssrc: number;
  readonly payloadType: number;
  #sequence: number;

  constructor(ssrc: number, payloadType: number) {
    this.ssrc = ssrc >>> 0;
    this.payloadType = payloadType;
    // RFC 3550 5.1: a random first sequence number.
    this.#sequence = randomInt(0, 0x10000);
  }

  /** The sequence number the next packet gets. */
  get nextSequence(): number {
    return this.#sequence;
  }

  /** An RTP packet: the 12-byte RFC 3550 header (version 2, no padding, extension or CSRC) and payload. */
  packet(payload: Uint8Array, timestamp: number, marker: boolean): Uint8Array {
    const out = new Uint8Array(12 + payload.byteLength);
    const view = new DataView(out.buffer);
    out[0] = 0x80;
    out[1] = (marker ? 0x80 : 0) | (this.payloadType & 0x7f);
    view.setUint16(2, this.#sequence);
    view.setUint32(4, timestamp >>> 0);
    view.setUint32(8, this.ssrc);
    out.set(payload, 12);
    this.#sequence = (this.#sequence + 1) & 0xffff;
    return out;
  }
}

/**
 * Maps a phone's PTS (µs) to RTP timestamps that keep counting across restarts of the phone's
 * encoder: a new session (another scrcpy server, whose clock starts anew after a reboot) begins
 * where the wall clock says the stream is, so a receiver sees one continuous stream.
 */
export class RtpTimeline {
  readonly clockRate: number;
  #base: { ptsUs: bigint; rtp: number } | undefined;
  #last: { rtp: number; atMs: number } | undefined;

  constructor(clockRate: number) {
    this.clockRate = clockRate;
  }

  /** The next PTS starts a new mapping (a new scrcpy server). */
  restart(): void {
    this.#base = undefined;
  }

  timestamp(ptsUs: bigint, nowMs: number): number {
    if (!this.#base) {
      const rtp = this.#last
        ? this.#last.rtp + Math.max(1, Math.round(((nowMs - this.#last.atMs) * this.clockRate) / 1000))
        : randomInt(0, 0x1_0000_0000);
      this.#base = { ptsUs, rtp: rtp >>> 0 };
    }
    const elapsed = Number(((ptsUs - this.#base.ptsUs) * BigInt(this.clockRate)) / 1_000_000n);
    const rtp = (this.#base.rtp + elapsed) >>> 0;
    this.#last = { rtp, atMs: nowMs };
    return rtp;
  }
}
