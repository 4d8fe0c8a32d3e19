import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

/**
 * The looped screen recording. Made by host-agent/scripts/make-h264-fixture.sh; keep these numbers
 * in step with that script.
 */
export const SCREEN_FIXTURE = {
  path: fileURLToPath(new URL('../../../fixtures/screen-720x1280.h264', import.meta.url)),
  width: 720,
  height: 1280,
  fps: 30,
} as const;

export interface EncodedFrame {
  /** Annex-B bytes of one access unit. */
  data: Uint8Array;
  keyFrame: boolean;
}

export interface H264Stream {
  /** SPS + PPS, what MediaCodec emits as its BUFFER_FLAG_CODEC_CONFIG packet. */
  config: Uint8Array;
  frames: EncodedFrame[];
}

const NAL_SLICE = 1;
const NAL_IDR = 5;
const NAL_SPS = 7;
const NAL_PPS = 8;

/** Splits Annex-B into NAL units, each keeping its start code. */
export function splitNalUnits(data: Uint8Array): Uint8Array[] {
  const starts: number[] = [];
  for (let i = 0; i + 2 < data.byteLength; i++) {
    if (data[i] === 0 && data[i + 1] === 0 && data[i + 2] === 1) {
      starts.push(i > 0 && data[i - 1] === 0 ? i - 1 : i);
      i += 2;
    }
  }
  return starts.map((start, index) => data.subarray(start, starts[index + 1] ?? data.byteLength));
}

function nalType(nal: Uint8Array): number {
  const offset = nal[2] === 1 ? 3 : 4;
  return (nal[offset] ?? 0) & 0x1f;
}

/** first_mb_in_slice is 0 (ue(v) "1" bit) exactly when a slice starts a new picture. */
function startsPicture(nal: Uint8Array): boolean {
  const offset = nal[2] === 1 ? 3 : 4;
  return ((nal[offset + 1] ?? 0) & 0x80) !== 0;
}

/**
 * Groups NAL units into access units the way an encoder hands them out: the first SPS/PPS pair
 * becomes the config packet; later parameter sets stay in front of their key frame.
 */
export function parseH264(data: Uint8Array): H264Stream {
  const configParts: Uint8Array[] = [];
  const frames: EncodedFrame[] = [];
  let prefix: Uint8Array[] = [];
  let current: { parts: Uint8Array[]; keyFrame: boolean } | undefined;
  const flush = (): void => {
    if (current) frames.push({ data: Buffer.concat(current.parts), keyFrame: current.keyFrame });
    current = undefined;
  };
  for (const nal of splitNalUnits(data)) {
    const type = nalType(nal);
    if ((type === NAL_SPS || type === NAL_PPS) && frames.length === 0 && !current) {
      configParts.push(nal);
      continue;
    }
    if (type === NAL_SLICE || type === NAL_IDR) {
      if (!current || startsPicture(nal)) {
        flush();
        current = { parts: prefix, keyFrame: type === NAL_IDR };
        prefix = [];
      }
      current.parts.push(nal);
      continue;
    }
    // SPS/PPS/SEI/AUD belong to the next picture.
    flush();
    prefix.push(nal);
  }
  flush();
  return { config: Buffer.concat(configParts), frames };
}

let cached: H264Stream | undefined;

export function loadScreenFixture(): H264Stream {
  cached ??= parseH264(readFileSync(SCREEN_FIXTURE.path));
  return cached;
}
