import * as assert from 'node:assert/strict';
import { test } from 'node:test';
import { inflateSync } from 'node:zlib';
import { crc32, PNG_SIGNATURE, renderScreenPng } from './png.js';

test('screencap PNG is well formed: signature, CRCs, IHDR size, inflatable rows', () => {
  const png = renderScreenPng(90, 160, 1);
  assert.ok(png.subarray(0, 8).equals(PNG_SIGNATURE));
  const chunks: { type: string; data: Buffer }[] = [];
  for (let offset = 8; offset < png.byteLength; ) {
    const length = png.readUInt32BE(offset);
    const type = png.toString('latin1', offset + 4, offset + 8);
    const data = png.subarray(offset + 8, offset + 8 + length);
    assert.equal(
      png.readUInt32BE(offset + 8 + length),
      crc32(png.subarray(offset + 4, offset + 8 + length)),
      type,
    );
    chunks.push({ type, data });
    offset += 12 + length;
  }
  assert.deepEqual(
    chunks.map((c) => c.type),
    ['IHDR', 'IDAT', 'IEND'],
  );
  const ihdr = chunks[0]!.data;
  assert.deepEqual([ihdr.readUInt32BE(0), ihdr.readUInt32BE(4), ihdr[8], ihdr[9]], [90, 160, 8, 2]);
  assert.equal(inflateSync(chunks[1]!.data).byteLength, 160 * (1 + 90 * 3));
});

test('crc32 matches the reference value', () => {
  assert.equal(crc32(new TextEncoder().encode('123456789')), 0xcbf43926);
});
