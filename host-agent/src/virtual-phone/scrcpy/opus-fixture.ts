import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

/** The phone's sound (host-agent/scripts/make-opus-fixture.sh): Opus, 48 kHz stereo, 20 ms packets. */
export const DEFAULT_AUDIO_FIXTURE = fileURLToPath(new URL('../../../fixtures/sound.opus', import.meta.url));
/** Every packet of the recording is one 20 ms Opus frame (ffmpeg's -frame_duration 20). */
export const OPUS_PACKET_US = 20_000;

export interface OpusStream {
  /** The 19-byte OpusHead: what scrcpy's server sends as the config packet (fixOpusConfigPacket). */
  head: Uint8Array;
  packets: Uint8Array[];
}

/**
 * The packets of an Ogg Opus file (RFC 7845): page segments of 255 bytes continue a packet, a
 * shorter one ends it. Written here because only this fixed, committed file is ever read: a
 * demuxer package would bring far more than these lines.
 */
export function parseOggOpus(data: Uint8Array): OpusStream {
  const bytes = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  const packets: Uint8Array[] = [];
  let partial: Buffer[] = [];
  let offset = 0;
  while (offset < bytes.byteLength) {
    if (bytes.toString('latin1', offset, offset + 4) !== 'OggS') {
      throw new Error(`no Ogg page at byte ${offset}`);
    }
    const segments = bytes[offset + 26]!;
    const table = bytes.subarray(offset + 27, offset + 27 + segments);
    let body = offset + 27 + segments;
    for (const length of table) {
      partial.push(bytes.subarray(body, body + length));
      body += length;
      if (length < 255) {
        packets.push(Buffer.concat(partial));
        partial = [];
      }
    }
    offset = body;
  }
  const [head, tags, ...audio] = packets;
  if (!head || Buffer.from(head).toString('latin1', 0, 8) !== 'OpusHead' || !tags) {
    throw new Error('not an Ogg Opus stream');
  }
  return { head, packets: audio };
}

let cached: { path: string; stream: OpusStream } | undefined;

export function loadAudioFixture(path: string = DEFAULT_AUDIO_FIXTURE): OpusStream {
  if (cached?.path !== path) cached = { path, stream: parseOggOpus(readFileSync(path)) };
  return cached.stream;
}
