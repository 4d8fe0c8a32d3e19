import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Size } from '../android/display.js';

/** The committed screen recordings (host-agent/scripts/make-h264-fixture.sh). */
export const DEFAULT_VIDEO_FIXTURES_DIR = fileURLToPath(new URL('../../../fixtures', import.meta.url));
/** Frame rate the recordings were made at; keep in step with FPS in make-h264-fixture.sh. */
export const FIXTURE_FPS = 30;

export interface EncodedFrame {
  /** Annex-B bytes of one access unit (slices, and any SEI in front of them). */
  data: Uint8Array;
  keyFrame: boolean;
}

export interface H264Stream extends Size {
  /** SPS + PPS, what MediaCodec emits as its BUFFER_FLAG_CODEC_CONFIG packet. */
  config: Uint8Array;
  frames: EncodedFrame[];
  /** Indexes of the IDR frames: where an encoder restart can begin. */
  keyFrames: number[];
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
 * Groups NAL units into access units the way MediaCodec hands them out: the first SPS/PPS pair
 * becomes the config packet and later copies are dropped (an encoder emits them once per start).
 */
export function parseH264(data: Uint8Array, size: Size): H264Stream {
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
    if (type === NAL_SPS || type === NAL_PPS) {
      if (frames.length === 0 && !current) configParts.push(nal);
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
    // SEI/AUD belong to the next picture.
    flush();
    prefix.push(nal);
  }
  flush();
  const keyFrames = frames.flatMap((frame, index) => (frame.keyFrame ? [index] : []));
  if (configParts.length === 0 || keyFrames[0] !== 0) {
    throw new Error(`a ${size.width}x${size.height} recording must start with SPS, PPS and an IDR`);
  }
  return { ...size, config: Buffer.concat(configParts), frames, keyFrames };
}

const cache = new Map<string, H264Stream>();

/** The sizes recorded in `dir` (files named screen-<W>x<H>.h264). */
export function fixtureSizes(dir: string = DEFAULT_VIDEO_FIXTURES_DIR): Size[] {
  return readdirSync(dir).flatMap((name) => {
    const match = /^screen-(\d+)x(\d+)\.h264$/.exec(name);
    return match ? [{ width: Number(match[1]), height: Number(match[2]) }] : [];
  });
}

export function loadVideoFixture(size: Size, dir: string = DEFAULT_VIDEO_FIXTURES_DIR): H264Stream {
  const path = join(dir, `screen-${size.width}x${size.height}.h264`);
  let stream = cache.get(path);
  if (!stream) {
    stream = parseH264(readFileSync(path), size);
    cache.set(path, stream);
  }
  return stream;
}

/**
 * The recording to stream for a wanted video size: that size if recorded, else the largest
 * recording of the same orientation that fits in it (as scrcpy's server downsizes when the
 * encoder refuses a size), else the smallest of that orientation.
 */
export function chooseFixtureSize(wanted: Size, dir: string = DEFAULT_VIDEO_FIXTURES_DIR): Size {
  const portrait = wanted.height >= wanted.width;
  const candidates = fixtureSizes(dir)
    .filter((s) => s.height >= s.width === portrait)
    .sort((a, b) => b.width * b.height - a.width * a.height);
  const exact = candidates.find((s) => s.width === wanted.width && s.height === wanted.height);
  const fitting = candidates.find((s) => s.width <= wanted.width && s.height <= wanted.height);
  const chosen = exact ?? fitting ?? candidates.at(-1);
  if (!chosen) throw new Error(`no ${portrait ? 'portrait' : 'landscape'} screen recording in ${dir}`);
  return chosen;
}
