import type { ServiceHandler } from '../adb/device-connection.js';
import type { ServiceSocket } from '../adb/service-socket.js';
import type { AndroidDevice } from '../android/android-device.js';
import { type FsEntry, FsError, fileMode, fileSize, type MemoryFileSystem } from '../android/file-system.js';
import { ByteReader } from '../byte-reader.js';

/** Largest DATA chunk either side may send (adb's SYNC_DATA_MAX). */
export const SYNC_DATA_MAX = 64 * 1024;
const ENOENT = 2;

const id = (text: string): number => Buffer.from(text, 'latin1').readUInt32LE(0);
const SyncId = {
  Stat: id('STAT'),
  Sta2: id('STA2'),
  Lst2: id('LST2'),
  List: id('LIST'),
  Lis2: id('LIS2'),
  Send: id('SEND'),
  Recv: id('RECV'),
  Data: id('DATA'),
  Done: id('DONE'),
  Quit: id('QUIT'),
} as const;

function header(name: string, size: number): Buffer {
  const out = Buffer.alloc(8);
  out.write(name, 0, 'latin1');
  out.writeUInt32LE(size >>> 0, 4);
  return out;
}

function fail(message: string): Buffer {
  const text = Buffer.from(message);
  return Buffer.concat([header('FAIL', text.byteLength), text]);
}

/** The 68 bytes after the id in STA2/LST2/DNT2 (adb's sync_stat_v2 minus the id). */
function statV2(entry: FsEntry | undefined, error: number): Buffer {
  const out = Buffer.alloc(68);
  out.writeUInt32LE(error, 0);
  if (!entry) return out;
  out.writeBigUInt64LE(1n, 12); // ino: nonzero like a real inode
  out.writeUInt32LE(fileMode(entry), 20);
  out.writeUInt32LE(1, 24); // nlink
  out.writeBigUInt64LE(BigInt(fileSize(entry)), 36);
  for (const offset of [44, 52, 60]) out.writeBigInt64LE(BigInt(entry.mtime), offset);
  return out;
}

/** adb's file transfer protocol: STAT/STA2/LST2, LIST/LIS2, SEND, RECV, QUIT. */
export function syncService(device: AndroidDevice): ServiceHandler {
  return async (socket) => {
    const reader = new ByteReader(socket);
    const fs = device.fs;
    for (;;) {
      const head = await reader.readUpTo(8);
      if (!head) return;
      const request =
        head.byteLength === 8 ? head : Buffer.concat([head, await reader.readExactly(8 - head.byteLength)]);
      const view = Buffer.from(request.buffer, request.byteOffset, 8);
      const command = view.readUInt32LE(0);
      const length = view.readUInt32LE(4);
      if (command === SyncId.Quit) return;
      const path = Buffer.from(await reader.readExactly(length)).toString('utf8');
      switch (command) {
        case SyncId.Stat: {
          const entry = fs.stat(path);
          const out = Buffer.alloc(16);
          out.write('STAT', 0, 'latin1');
          if (entry) {
            out.writeUInt32LE(fileMode(entry), 4);
            out.writeUInt32LE(fileSize(entry), 8);
            out.writeUInt32LE(entry.mtime, 12);
          }
          await socket.write(out);
          break;
        }
        case SyncId.Sta2:
        case SyncId.Lst2: {
          const entry = fs.stat(path);
          const name = command === SyncId.Sta2 ? 'STA2' : 'LST2';
          await socket.write(Buffer.concat([Buffer.from(name, 'latin1'), statV2(entry, entry ? 0 : ENOENT)]));
          break;
        }
        case SyncId.List:
        case SyncId.Lis2:
          await list(socket, fs, path, command === SyncId.Lis2);
          break;
        case SyncId.Send:
          await receiveFile(socket, reader, fs, path);
          break;
        case SyncId.Recv:
          await sendFile(socket, fs, path);
          break;
        default:
          await socket.write(fail(`unknown sync command 0x${command.toString(16)}`));
          return;
      }
    }
  };
}

async function list(socket: ServiceSocket, fs: MemoryFileSystem, path: string, v2: boolean): Promise<void> {
  let entries: { name: string; entry: FsEntry }[] = [];
  try {
    entries = fs.list(path);
  } catch {
    // adbd answers an unreadable directory with an empty listing
  }
  const parts: Buffer[] = [];
  for (const { name, entry } of entries) {
    const nameBytes = Buffer.from(name);
    if (v2) {
      const len = Buffer.alloc(4);
      len.writeUInt32LE(nameBytes.byteLength);
      parts.push(Buffer.from('DNT2', 'latin1'), statV2(entry, 0), len, nameBytes);
    } else {
      const dent = Buffer.alloc(20);
      dent.write('DENT', 0, 'latin1');
      dent.writeUInt32LE(fileMode(entry), 4);
      dent.writeUInt32LE(fileSize(entry), 8);
      dent.writeUInt32LE(entry.mtime, 12);
      dent.writeUInt32LE(nameBytes.byteLength, 16);
      parts.push(dent, nameBytes);
    }
  }
  const done = Buffer.alloc(v2 ? 76 : 20);
  done.write('DONE', 0, 'latin1');
  parts.push(done);
  await socket.write(Buffer.concat(parts));
}

async function receiveFile(
  socket: ServiceSocket,
  reader: ByteReader,
  fs: MemoryFileSystem,
  spec: string,
): Promise<void> {
  const comma = spec.lastIndexOf(',');
  const path = comma === -1 ? spec : spec.slice(0, comma);
  const mode = comma === -1 ? 0o644 : Number.parseInt(spec.slice(comma + 1), 10) & 0o7777;
  const chunks: Uint8Array[] = [];
  let mtime: number;
  // The host streams every DATA before it reads the verdict, even when the write will fail.
  for (;;) {
    const head = Buffer.from(await reader.readExactly(8));
    const command = head.readUInt32LE(0);
    const size = head.readUInt32LE(4);
    if (command === SyncId.Done) {
      mtime = size;
      break;
    }
    if (command !== SyncId.Data) {
      await socket.write(fail(`invalid data message: expected DATA or DONE`));
      return;
    }
    if (size > SYNC_DATA_MAX) {
      await socket.write(fail(`data packet of ${size} bytes exceeds ${SYNC_DATA_MAX}`));
      return;
    }
    chunks.push(await reader.readExactly(size));
  }
  try {
    fs.write(path, Buffer.concat(chunks), { mode, mtime });
  } catch (error) {
    if (!(error instanceof FsError)) throw error;
    await socket.write(fail(`couldn't create file: ${error.reason}`));
    return;
  }
  await socket.write(header('OKAY', 0));
}

async function sendFile(socket: ServiceSocket, fs: MemoryFileSystem, path: string): Promise<void> {
  let data: Uint8Array;
  try {
    data = fs.read(path);
  } catch (error) {
    if (!(error instanceof FsError)) throw error;
    await socket.write(fail(error.reason));
    return;
  }
  // DATA packets are batched into large writes: each ADB packet costs a round trip for its OKAY.
  let batch: Uint8Array[] = [];
  let batched = 0;
  for (let offset = 0; offset < data.byteLength; offset += SYNC_DATA_MAX) {
    const chunk = data.subarray(offset, offset + SYNC_DATA_MAX);
    batch.push(header('DATA', chunk.byteLength), chunk);
    batched += chunk.byteLength;
    if (batched >= 16 * SYNC_DATA_MAX) {
      await socket.write(Buffer.concat(batch));
      batch = [];
      batched = 0;
    }
  }
  batch.push(header('DONE', 0));
  await socket.write(Buffer.concat(batch));
}
