// Test helpers: an independent RFC 6184 depacketizer and a real H.264 decoder (TinyH264, the
// Android Baseline decoder built to WebAssembly) to check what ingest sends, a recorder of what
// it delivered, and the stand-in server file the virtual phone takes.
import { createHash } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { FrameInfo } from './media-sink.js';
import type { VideoSize } from './rtp/video-rtp.js';
import type { ScrcpyServerBinary } from './scrcpy-server-binary.js';

/** What one ingest delivered; pass `sink` and the `on*` callbacks to it. */
export class Recorder {
  video: Uint8Array[] = [];
  audio: Uint8Array[] = [];
  frames: FrameInfo[] = [];
  clipboard: string[] = [];
  /** Each video size as `WxH`, and how many frames had arrived when it was announced. */
  sizes: string[] = [];
  sizeAt: number[] = [];
  errors: Error[] = [];
  sink = {
    sendVideoRtp: (p: Uint8Array) => this.video.push(p),
    sendAudioRtp: (p: Uint8Array) => this.audio.push(p),
  };
  onFrame = (info: FrameInfo): void => {
    this.frames.push(info);
  };
  onClipboard = (text: string): void => {
    this.clipboard.push(text);
  };
  onVideoSize = ({ width, height }: VideoSize): void => {
    this.sizes.push(`${width}x${height}`);
    this.sizeAt.push(this.frames.length);
  };
  onSessionError = (error: Error): void => {
    this.errors.push(error);
  };
}

/**
 * The virtual phone runs no jar: a stand-in file, written into `dir`, with its own hash goes
 * through the same check and push.
 */
export async function writeStandInServer(dir: string): Promise<Required<ScrcpyServerBinary>> {
  const jar = Buffer.from('PK\x03\x04 stand-in scrcpy server');
  const server = { path: join(dir, 'scrcpy-server'), sha256: createHash('sha256').update(jar).digest('hex') };
  await writeFile(server.path, jar);
  return server;
}

export interface RtpHeader {
  marker: boolean;
  payloadType: number;
  sequence: number;
  timestamp: number;
  ssrc: number;
  payload: Uint8Array;
}

export function parseRtp(packet: Uint8Array): RtpHeader {
  const view = new DataView(packet.buffer, packet.byteOffset, packet.byteLength);
  if (packet[0]! >> 6 !== 2) throw new Error('not RTP version 2');
  const csrcs = packet[0]! & 0x0f;
  return {
    marker: (packet[1]! & 0x80) !== 0,
    payloadType: packet[1]! & 0x7f,
    sequence: view.getUint16(2),
    timestamp: view.getUint32(4),
    ssrc: view.getUint32(8),
    payload: packet.subarray(12 + 4 * csrcs),
  };
}

/** One depacketized access unit: its NAL units (no start codes) and RTP facts. */
export interface DepacketizedFrame {
  timestamp: number;
  nals: Uint8Array[];
  packets: number;
}

/** Reassembles access units from RTP packets in order (single NAL, STAP-A, FU-A), ending at the marker. */
export class H264Depacketizer {
  readonly frames: DepacketizedFrame[] = [];
  #nals: Uint8Array[] = [];
  #fragment: Uint8Array[] | undefined;
  #packets = 0;
  #lastSequence: number | undefined;

  push(packet: Uint8Array): void {
    const rtp = parseRtp(packet);
    if (this.#lastSequence !== undefined && rtp.sequence !== ((this.#lastSequence + 1) & 0xffff)) {
      throw new Error(`sequence jumped from ${this.#lastSequence} to ${rtp.sequence}`);
    }
    this.#lastSequence = rtp.sequence;
    this.#packets++;
    const p = rtp.payload;
    const type = p[0]! & 0x1f;
    if (type === 24) {
      for (let offset = 1; offset < p.byteLength; ) {
        const size = (p[offset]! << 8) | p[offset + 1]!;
        this.#nals.push(p.subarray(offset + 2, offset + 2 + size));
        offset += 2 + size;
      }
    } else if (type === 28) {
      const start = (p[1]! & 0x80) !== 0;
      const end = (p[1]! & 0x40) !== 0;
      if (start) this.#fragment = [Uint8Array.of((p[0]! & 0xe0) | (p[1]! & 0x1f))];
      if (!this.#fragment) throw new Error('FU-A continuation without a start');
      this.#fragment.push(p.subarray(2));
      if (end) {
        this.#nals.push(Buffer.concat(this.#fragment));
        this.#fragment = undefined;
      }
    } else {
      this.#nals.push(p);
    }
    if (rtp.marker) {
      this.frames.push({ timestamp: rtp.timestamp, nals: this.#nals, packets: this.#packets });
      this.#nals = [];
      this.#packets = 0;
    }
  }
}

export interface DecodedPicture {
  width: number;
  height: number;
}

/** TinyH264 in Node: it is built for a browser worker, which only needs `self.location`. */
export async function createDecoder(onPicture: (picture: DecodedPicture) => void) {
  const scope = globalThis as { self?: unknown };
  scope.self ??= { location: { href: '' } };
  // @ts-expect-error: tinyh264 ships no types.
  const { default: TinyH264 } = await import('tinyh264/lib/TinyH264.js');
  // @ts-expect-error: tinyh264 ships no types.
  const { default: TinyH264Decoder } = await import('tinyh264/lib/TinyH264Decoder.js');
  const module = await TinyH264();
  const decoder = new TinyH264Decoder(module, (_picture: Uint8Array, width: number, height: number) =>
    onPicture({ width, height }),
  );
  return {
    /** One NAL unit, no start code. */
    decode: (nal: Uint8Array): void => decoder.decode(nal),
    release: (): void => decoder.release(),
  };
}
