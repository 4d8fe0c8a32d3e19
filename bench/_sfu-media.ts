// The media and measuring tools of bench/sfu.ts: a 720p30 H.264 stream at 2 Mbit/s made from the
// committed 720x1280 recording, a player that sends it at 30 fps, process CPU from the scheduler,
// the kernel's UDP drop counters, percentiles.
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { type AccessUnit, type H264Recording, loadH264Recording } from '@cphone/sfu/testing';

export const FPS = 30;
export const VIDEO_BITRATE = 2_000_000;

const NAL_SEI = 6;
const NAL_SPS = 7;
const NAL_PPS = 8;
const nalType = (nal: Uint8Array): number => nal[0]! & 0x1f;

/**
 * An SEI NAL unit (user data unregistered) of exactly `bytes` bytes. Decoders skip it, so it
 * brings a small recording up to a real encoder's bit rate without changing the picture. Its
 * payload has no zero bytes, so it needs no emulation prevention.
 */
export function paddingSei(bytes: number): Uint8Array {
  // type, payloadType, size bytes, 16-byte UUID, payload, trailing bits
  let payload = Math.max(16, bytes - 4);
  const sizeBytes = (n: number) => Math.floor(n / 255) + 1;
  while (payload > 16 && 3 + sizeBytes(payload) + payload > bytes) payload--;
  const out = new Uint8Array(3 + sizeBytes(payload) - 1 + payload).fill(0x55);
  let at = 0;
  out[at++] = NAL_SEI;
  out[at++] = 5;
  for (let left = payload; ; left -= 255) {
    if (left >= 255) out[at++] = 0xff;
    else {
      out[at++] = left;
      break;
    }
  }
  out.fill(0xc7, at, at + 16);
  out[out.length - 1] = 0x80;
  return out;
}

/**
 * The committed `width`x`height` recording with every access unit padded by an SEI in front of its
 * slices to `bitrate` at 30 fps: the packet sizes and counts of a 2 Mbit/s 720p30 phone, over the
 * recording's real picture.
 */
export function paddedRecording(width = 720, height = 1280, bitrate = VIDEO_BITRATE): H264Recording {
  const base = loadH264Recording(width, height);
  const target = Math.round(bitrate / 8 / FPS);
  const frames: AccessUnit[] = base.frames.map((unit) => {
    const size = unit.nals.reduce((n, nal) => n + nal.byteLength + 4, 0);
    if (size + 8 >= target) return unit;
    const params = unit.nals.filter((nal) => nalType(nal) === NAL_SPS || nalType(nal) === NAL_PPS);
    const rest = unit.nals.filter((nal) => nalType(nal) !== NAL_SPS && nalType(nal) !== NAL_PPS);
    return { keyframe: unit.keyframe, nals: [...params, paddingSei(target - size - 4), ...rest] };
  });
  return { width, height, frames };
}

/** Writes padded recordings as the virtual phone reads them (`videoFixturesDir`): both orientations. */
export async function writePaddedFixtures(dir: string, bitrate = VIDEO_BITRATE): Promise<void> {
  for (const [w, h] of [
    [720, 1280],
    [1280, 720],
  ] as const) {
    const start = Uint8Array.of(0, 0, 0, 1);
    const parts = paddedRecording(w, h, bitrate).frames.flatMap((f) => f.nals.flatMap((nal) => [start, nal]));
    await writeFile(join(dir, `screen-${w}x${h}.h264`), Buffer.concat(parts));
  }
}

/** Plays access units at 30 fps, in a loop; `paused` holds it between measuring windows. */
export class FramePlayer {
  #timer: NodeJS.Timeout | undefined;
  #index = 0;
  paused = false;
  /** Frames sent so far. */
  frames = 0;

  constructor(
    readonly recording: H264Recording,
    readonly send: (unit: AccessUnit, timestamp: number) => void,
  ) {}

  start(): void {
    const base = Math.floor(Math.random() * 2 ** 32);
    const started = performance.now();
    this.#timer = setInterval(() => {
      if (this.paused) return;
      const unit = this.recording.frames[this.#index]!;
      this.#index = (this.#index + 1) % this.recording.frames.length;
      this.send(unit, (base + Math.round(((performance.now() - started) * 90_000) / 1000)) >>> 0);
      this.frames++;
    }, 1000 / FPS);
  }

  stop(): void {
    clearInterval(this.#timer);
  }
}

/**
 * CPU seconds a process has run so far, every thread, from /proc/<pid>/task/<tid>/schedstat (ns;
 * utime in /proc/<pid>/stat counts 10 ms ticks, too coarse for short windows).
 */
export async function cpuSeconds(pid: number): Promise<number> {
  let ns = 0;
  for (const tid of await readdir(`/proc/${pid}/task`).catch(() => [])) {
    const text = await readFile(`/proc/${pid}/task/${tid}/schedstat`, 'utf8').catch(() => '0');
    ns += Number(text.split(' ')[0]);
  }
  return ns / 1e9;
}

/** Measures the CPU of some processes over a window: call, and call the result at its end. */
export async function cpuMeter(pids: readonly number[]): Promise<() => Promise<number[]>> {
  const start = await Promise.all(pids.map(cpuSeconds));
  const t0 = performance.now();
  return async () => {
    const end = await Promise.all(pids.map(cpuSeconds));
    const wall = (performance.now() - t0) / 1000;
    return end.map((s, i) => ((s - start[i]!) / wall) * 100);
  };
}

/** The kernel's UDP counters (/proc/net/snmp): datagrams in, and those dropped for a full receive buffer. */
export async function udpCounters(): Promise<{
  inDatagrams: number;
  rcvbufErrors: number;
  sndbufErrors: number;
}> {
  const lines = (await readFile('/proc/net/snmp', 'utf8')).split('\n').filter((l) => l.startsWith('Udp:'));
  const names = lines[0]!.split(/\s+/);
  const values = lines[1]!.split(/\s+/).map(Number);
  const get = (name: string) => values[names.indexOf(name)] ?? 0;
  return {
    inDatagrams: get('InDatagrams'),
    rcvbufErrors: get('RcvbufErrors'),
    sndbufErrors: get('SndbufErrors'),
  };
}

export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;
}

export const ms = (v: number) => (Number.isFinite(v) ? v.toFixed(1) : 'n/a');

/** The epoch time now, ms, with performance.now's resolution. */
export const epochNow = (): number => performance.timeOrigin + performance.now();

/** RTP header fields (SRTP leaves the header in clear). RTCP (payload types 64-95 muxed) is undefined. */
export function rtpHeader(
  packet: Buffer,
): { ssrc: number; timestamp: number; marker: boolean; sequence: number } | undefined {
  const pt = packet[1]! & 0x7f;
  if (packet.byteLength < 12 || (pt >= 64 && pt <= 95)) return undefined;
  return {
    marker: (packet[1]! & 0x80) !== 0,
    sequence: packet.readUInt16BE(2),
    timestamp: packet.readUInt32BE(4),
    ssrc: packet.readUInt32BE(8),
  };
}
