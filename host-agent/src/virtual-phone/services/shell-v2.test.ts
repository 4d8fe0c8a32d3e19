import * as assert from 'node:assert/strict';
import { test } from 'node:test';
import { ByteQueue, ByteReader } from '../byte-reader.js';
import { encodeShellPacket, readShellPacket, ShellPacketId } from './shell-v2.js';

test('frames are [id u8][length u32le][payload] and survive arbitrary chunking', async () => {
  const frame = encodeShellPacket(ShellPacketId.Stdout, new TextEncoder().encode('hi\n'));
  assert.deepEqual([...frame], [1, 3, 0, 0, 0, 0x68, 0x69, 0x0a]);
  const both = Buffer.concat([frame, encodeShellPacket(ShellPacketId.Exit, Uint8Array.of(3))]);
  const queue = new ByteQueue();
  for (const byte of both) queue.push(Uint8Array.of(byte));
  queue.end();
  const reader = new ByteReader(queue);
  const first = await readShellPacket(reader);
  const second = await readShellPacket(reader);
  assert.deepEqual([first?.id, Buffer.from(first?.payload ?? []).toString()], [1, 'hi\n']);
  assert.deepEqual([second?.id, [...(second?.payload ?? [])]], [3, [3]]);
  assert.equal(await readShellPacket(reader), undefined);
});
