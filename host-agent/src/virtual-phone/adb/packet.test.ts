import * as assert from 'node:assert/strict';
import { test } from 'node:test';
import { AdbCommand, checksum, encodePacket, PacketDecoder } from './packet.js';

test('encodes the 24-byte header with checksum and magic', () => {
  const bytes = encodePacket({
    command: AdbCommand.Write,
    arg0: 1,
    arg1: 2,
    payload: Uint8Array.of(1, 2, 255),
  });
  const view = new DataView(bytes.buffer);
  assert.equal(Buffer.from(bytes.subarray(0, 4)).toString('latin1'), 'WRTE');
  assert.deepEqual([view.getUint32(4, true), view.getUint32(8, true), view.getUint32(12, true)], [1, 2, 3]);
  assert.equal(view.getUint32(16, true), checksum(Uint8Array.of(1, 2, 255)));
  assert.equal(view.getUint32(20, true), (AdbCommand.Write ^ 0xffffffff) >>> 0);
});

test('decodes packets split at any byte boundary', () => {
  const a = encodePacket({
    command: AdbCommand.Open,
    arg0: 5,
    arg1: 0,
    payload: new TextEncoder().encode('shell:ls\0'),
  });
  const b = encodePacket({ command: AdbCommand.Okay, arg0: 1, arg1: 5, payload: new Uint8Array(0) });
  const all = Buffer.concat([a, b]);
  for (let split = 0; split <= all.byteLength; split++) {
    const decoder = new PacketDecoder();
    const packets = [...decoder.push(all.subarray(0, split)), ...decoder.push(all.subarray(split))];
    assert.deepEqual(
      packets.map((p) => [p.command, p.arg0, p.arg1, Buffer.from(p.payload).toString()]),
      [
        [AdbCommand.Open, 5, 0, 'shell:ls\0'],
        [AdbCommand.Okay, 1, 5, ''],
      ],
    );
  }
});

test('a bad magic is an error', () => {
  const bytes = encodePacket({ command: AdbCommand.Okay, arg0: 0, arg1: 0, payload: new Uint8Array(0) });
  bytes[20] = 0;
  assert.throws(() => new PacketDecoder().push(bytes), /bad packet magic/);
});

test('a header claiming more than the negotiated maximum is refused before its payload arrives', () => {
  let max = 4096;
  const decoder = new PacketDecoder(() => max);
  const header = encodePacket({ command: AdbCommand.Write, arg0: 1, arg1: 2, payload: new Uint8Array(0) });
  new DataView(header.buffer).setUint32(12, 128 << 20, true);
  assert.throws(
    () => decoder.push(header),
    /WRTE packet claims a 134217728-byte payload, more than the negotiated maximum of 4096/,
  );
  // A payload exactly at the maximum is fine.
  max = 8;
  const ok = new PacketDecoder(() => max);
  const packet = encodePacket({ command: AdbCommand.Write, arg0: 1, arg1: 2, payload: new Uint8Array(8) });
  assert.equal(ok.push(packet).length, 1);
});
