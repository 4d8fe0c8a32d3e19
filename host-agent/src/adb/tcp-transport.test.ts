import * as assert from 'node:assert/strict';
import { once } from 'node:events';
import { type AddressInfo, createServer, type Server, type Socket } from 'node:net';
import { after, before, test } from 'node:test';
import { waitFor } from '@cphone/proto/testing';
import { AdbCommand, type AdbPacketInit } from '@yume-chan/adb';
import { Consumable } from '@yume-chan/stream-extra';
import { AdbPacketTooLargeError } from './packet-readable.js';
import { type AdbTcpConnection, connectAdbTcp } from './tcp-transport.js';

let server: Server;
let port = 0;
const accepted: Socket[] = [];

before(async () => {
  // Sockets stay paused (nothing read) until a test listens for 'data'.
  server = createServer((socket) => accepted.push(socket));
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  port = (server.address() as AddressInfo).port;
});

after(async () => {
  for (const socket of accepted) socket.destroy();
  server.close();
  await once(server, 'close');
});

/** A client connection and the server's end of it. */
async function connectPair(): Promise<{ client: AdbTcpConnection; peer: Socket }> {
  const count = accepted.length;
  const client = await connectAdbTcp('127.0.0.1', port);
  while (accepted.length === count) await once(server, 'connection');
  const peer = accepted[count];
  assert.ok(peer);
  return { client, peer };
}

function packet(command: number, payload: Uint8Array): AdbPacketInit {
  return {
    command,
    arg0: 7,
    arg1: 9,
    payload,
    checksum: payload.reduce((sum, byte) => sum + byte, 0),
    magic: command ^ 0xffffffff,
  };
}

/** The wire form, built by hand: six little-endian 32-bit header fields, then the payload. */
function wire(p: AdbPacketInit): Buffer {
  const header = Buffer.alloc(24);
  header.writeUInt32LE(p.command, 0);
  header.writeUInt32LE(p.arg0, 4);
  header.writeUInt32LE(p.arg1, 8);
  header.writeUInt32LE(p.payload.length, 12);
  header.writeUInt32LE(p.checksum, 16);
  header.writeInt32LE(p.magic, 20);
  return Buffer.concat([header, p.payload]);
}

async function send(client: AdbTcpConnection, p: AdbPacketInit): Promise<void> {
  const writer = client.connection.writable.getWriter();
  try {
    await Consumable.WritableStream.write(writer, p);
  } finally {
    writer.releaseLock();
  }
}

/** Reads from the peer until `length` bytes came; returns the chunks as the peer's reads saw them. */
async function receive(peer: Socket, length: number): Promise<Buffer[]> {
  const chunks: Buffer[] = [];
  let received = 0;
  for await (const chunk of peer as AsyncIterable<Buffer>) {
    chunks.push(chunk);
    received += chunk.length;
    if (received >= length) break;
  }
  return chunks;
}

/** Records what `socket.write` is handed, in order. */
function recordWrites(socket: Socket): Buffer[] {
  const writes: Buffer[] = [];
  const write = socket.write.bind(socket) as (
    chunk: Uint8Array,
    cb?: (err?: Error | null) => void,
  ) => boolean;
  socket.write = ((chunk: Uint8Array, cb?: (err?: Error | null) => void) => {
    writes.push(Buffer.from(chunk));
    return write(chunk, cb);
  }) as Socket['write'];
  return writes;
}

test('a small packet is one socket write, so the peer reads header and payload as one chunk', async () => {
  const { client, peer } = await connectPair();
  const writes = recordWrites(client.socket);
  const wrte = packet(AdbCommand.Write, new TextEncoder().encode('shell:getprop\0'));
  const [chunks] = await Promise.all([receive(peer, wire(wrte).length), send(client, wrte)]);
  // With TCP_NODELAY each write is sent as its own segment, so the count of writes is what matters.
  assert.deepEqual(writes, [wire(wrte)]);
  assert.deepEqual(chunks, [wire(wrte)]);
  client.close();
});

test('a packet larger than the socket buffer arrives whole and in order with the next one', async () => {
  const { client, peer } = await connectPair();
  const big = packet(AdbCommand.Write, Buffer.alloc(4 << 20, 0xab));
  const okay = packet(AdbCommand.Okay, new Uint8Array());
  const expected = Buffer.concat([wire(big), wire(okay)]);
  const [chunks] = await Promise.all([
    receive(peer, expected.length),
    send(client, big).then(() => send(client, okay)),
  ]);
  assert.ok(Buffer.concat(chunks).equals(expected));
  client.close();
});

test('a write waiting for the socket to drain is released when the peer resets the connection', async () => {
  const { client, peer } = await connectPair();
  // The peer reads nothing, so 32 MiB cannot fit in the kernel's buffers and the write must wait.
  const writing = send(client, packet(AdbCommand.Write, Buffer.alloc(32 << 20)));
  await waitFor('the write to wait for the socket to drain', () => client.socket.writableNeedDrain, Boolean);
  peer.resetAndDestroy();
  await writing;
  assert.equal(client.socket.destroyed, true);
});

test('a phone announcing a payload larger than negotiated is cut off with a clear error', async () => {
  const { client, peer } = await connectPair();
  const reader = client.connection.readable.getReader();
  const header = wire(packet(AdbCommand.Write, new Uint8Array()));
  header.writeUInt32LE(128 << 20, 12);
  // Only the header and a little of the announced payload: the client must not wait for the rest.
  peer.write(Buffer.concat([header, Buffer.alloc(1000)]));
  await assert.rejects(reader.read(), (error: unknown) => {
    assert.ok(error instanceof AdbPacketTooLargeError);
    assert.equal(error.payloadLength, 128 << 20);
    assert.match(error.message, /payloadLength=134217728, more than the maximum of 1048576/);
    return true;
  });
  assert.equal(client.socket.destroyed, true);
  await once(peer, 'close');
});
