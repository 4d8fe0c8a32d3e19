import * as assert from 'node:assert/strict';
import { test } from 'node:test';
import { H264Depacketizer } from '../testing.js';
import { h264Payloads, keyFramePayloads, stapA } from './h264-packetizer.js';
import { RtpStream, RtpTimeline } from './rtp-stream.js';

const nal = (type: number, size: number, nri = 0x60): Uint8Array => {
  const out = new Uint8Array(size);
  out[0] = nri | type;
  for (let i = 1; i < size; i++) out[i] = (i * 7) & 0xff;
  return out;
};

test('small NAL units go alone, large ones in FU-A fragments within the payload size', () => {
  const small = nal(1, 300);
  const large = nal(5, 5000);
  const payloads = h264Payloads([small, large], 1200);
  assert.equal(payloads[0], small);
  assert.ok(payloads.every((p) => p.byteLength <= 1200));
  const fragments = payloads.slice(1);
  assert.equal(fragments.length, Math.ceil(4999 / 1198));
  assert.deepEqual(
    fragments.map((f) => [f[0], f[1]! & 0xc0]),
    fragments.map((_, i) => [0x60 | 28, i === 0 ? 0x80 : i === fragments.length - 1 ? 0x40 : 0]),
  );
  assert.ok(fragments.every((f) => (f[1]! & 0x1f) === 5));
});

test('a key frame starts with its SPS and PPS in one STAP-A, and depacketizes to the same units', () => {
  const sps = nal(7, 20);
  const pps = nal(8, 6);
  const idr = nal(5, 3000);
  const stream = new RtpStream(0x1234, 102);
  const payloads = keyFramePayloads([sps, pps], [sps, pps, idr], 1200);
  assert.equal(payloads[0]?.[0], 0x60 | 24, 'STAP-A with the highest NRI');
  assert.deepEqual(payloads[0], stapA([sps, pps], 1200));
  const depacketizer = new H264Depacketizer();
  payloads.forEach((p, i) => {
    depacketizer.push(stream.packet(p, 9000, i === payloads.length - 1));
  });
  assert.equal(depacketizer.frames.length, 1);
  assert.deepEqual(
    depacketizer.frames[0]?.nals.map((n) => Buffer.from(n).toString('hex')),
    [sps, pps, idr].map((n) => Buffer.from(n).toString('hex')),
    'in-band parameter sets are not sent twice',
  );
});

test('RTP headers: version 2, payload type, marker, sequence wraps, timestamps keep going across restarts', () => {
  const stream = new RtpStream(0xdeadbeef, 96);
  const first = stream.nextSequence;
  const packets = Array.from({ length: 3 }, (_, i) => stream.packet(Uint8Array.of(1), 1000, i === 2));
  const view = (p: Uint8Array) => new DataView(p.buffer, p.byteOffset);
  assert.deepEqual(
    packets.map((p) => [p[0], p[1], view(p).getUint16(2), view(p).getUint32(8)]),
    [
      [0x80, 96, first, 0xdeadbeef],
      [0x80, 96, (first + 1) & 0xffff, 0xdeadbeef],
      [0x80, 0x80 | 96, (first + 2) & 0xffff, 0xdeadbeef],
    ],
  );

  const timeline = new RtpTimeline(90_000);
  const a = timeline.timestamp(5_000_000n, 100);
  assert.equal(timeline.timestamp(5_033_333n, 133) - a, 2999, '90 kHz from µs');
  timeline.restart();
  // A new server's clock starts again near 0, half a second of wall time later.
  const b = timeline.timestamp(1_000n, 633);
  assert.equal((b - a) >>> 0, 2999 + 45_000);
});
