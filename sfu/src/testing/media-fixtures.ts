// The project's committed recordings (host-agent/fixtures: an H.264 Constrained Baseline screen
// recording and an Ogg Opus sound), read as access units and Opus packets, and packetized into
// RTP the way the agent's ingest does (RFC 6184 mode 1, RFC 7587). Written again here, small,
// because @cphone/host-agent depends on this package and not the other way round.
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const FIXTURES = fileURLToPath(new URL('../../../host-agent/fixtures/', import.meta.url));

export const FIXTURE_FPS = 30;
export const OPUS_PACKET_MS = 20;

export interface AccessUnit {
  /** NAL units without start codes. */
  readonly nals: readonly Uint8Array[];
  readonly keyframe: boolean;
}

export interface H264Recording {
  readonly width: number;
  readonly height: number;
  readonly frames: readonly AccessUnit[];
}

const nalType = (nal: Uint8Array): number => nal[0]! & 0x1f;

/** NAL units of an Annex-B stream, start codes removed. */
export function splitAnnexB(data: Uint8Array): Uint8Array[] {
  const starts: { at: number; length: number }[] = [];
  for (let i = 0; i + 2 < data.byteLength; i++) {
    if (data[i] === 0 && data[i + 1] === 0 && data[i + 2] === 1) {
      const long = i > 0 && data[i - 1] === 0;
      starts.push({ at: long ? i - 1 : i, length: long ? 4 : 3 });
      i += 2;
    }
  }
  return starts.map((s, index) => data.subarray(s.at + s.length, starts[index + 1]?.at ?? data.byteLength));
}

/** Access units of a recording whose IDRs carry SPS and PPS in front (x264 repeat-headers). */
export function loadH264Recording(width = 360, height = 640): H264Recording {
  const nals = splitAnnexB(readFileSync(`${FIXTURES}screen-${width}x${height}.h264`));
  const frames: AccessUnit[] = [];
  let current: Uint8Array[] = [];
  let hasSlice = false;
  const flush = () => {
    if (current.length) frames.push({ nals: current, keyframe: current.some((n) => nalType(n) === 5) });
    current = [];
    hasSlice = false;
  };
  for (const nal of nals) {
    const type = nalType(nal);
    const slice = type === 1 || type === 5;
    // A slice with first_mb_in_slice 0 (a leading "1" bit) starts a picture, as does a parameter set after one.
    if (hasSlice && (!slice || (nal[1]! & 0x80) !== 0)) flush();
    current.push(nal);
    if (slice) hasSlice = true;
  }
  flush();
  return { width, height, frames };
}

/** The Opus packets of the committed Ogg Opus sound (20 ms each), OpusHead and OpusTags dropped. */
export function loadOpusPackets(): Uint8Array[] {
  const bytes = readFileSync(`${FIXTURES}sound.opus`);
  const packets: Uint8Array[] = [];
  let partial: Buffer[] = [];
  let offset = 0;
  while (offset < bytes.byteLength) {
    const segments = bytes[offset + 26]!;
    let body = offset + 27 + segments;
    for (const length of bytes.subarray(offset + 27, offset + 27 + segments)) {
      partial.push(bytes.subarray(body, body + length));
      body += length;
      if (length < 255) {
        packets.push(Buffer.concat(partial));
        partial = [];
      }
    }
    offset = body;
  }
  return packets.slice(2);
}

/** One RTP source: 12-byte headers, a sequence that counts up from a random start. */
export class RtpPacketizer {
  #sequence = Math.floor(Math.random() * 0x10000);

  constructor(
    readonly ssrc: number,
    readonly payloadType: number,
  ) {}

  packet(payload: Uint8Array, timestamp: number, marker: boolean): Uint8Array {
    const out = new Uint8Array(12 + payload.byteLength);
    const view = new DataView(out.buffer);
    out[0] = 0x80;
    out[1] = (marker ? 0x80 : 0) | this.payloadType;
    view.setUint16(2, this.#sequence);
    view.setUint32(4, timestamp >>> 0);
    view.setUint32(8, this.ssrc >>> 0);
    out.set(payload, 12);
    this.#sequence = (this.#sequence + 1) & 0xffff;
    return out;
  }

  /** RFC 6184 mode 1: small NAL units alone, large ones as FU-A; the marker on the last packet. */
  h264(unit: AccessUnit, timestamp: number, maxPayload = 1200): Uint8Array[] {
    const payloads: Uint8Array[] = [];
    for (const nal of unit.nals) {
      if (nal.byteLength <= maxPayload) {
        payloads.push(nal);
        continue;
      }
      for (let offset = 1; offset < nal.byteLength; offset += maxPayload - 2) {
        const end = Math.min(offset + maxPayload - 2, nal.byteLength);
        const fragment = new Uint8Array(2 + end - offset);
        fragment[0] = (nal[0]! & 0xe0) | 28;
        fragment[1] = (offset === 1 ? 0x80 : 0) | (end === nal.byteLength ? 0x40 : 0) | nalType(nal);
        fragment.set(nal.subarray(offset, end), 2);
        payloads.push(fragment);
      }
    }
    return payloads.map((p, i) => this.packet(p, timestamp, i === payloads.length - 1));
  }
}
