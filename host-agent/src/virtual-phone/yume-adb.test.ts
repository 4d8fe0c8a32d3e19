// The agent's ADB client (@yume-chan/adb over the agent's TCP connector) against the virtual phone:
// AUTH, shell v2, exec, sync push/pull and the scrcpy flow (push server, launch, open sockets).
import * as assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { waitFor } from '@cphone/proto/testing';
import { Adb, AdbDaemonTransport, type AdbSocket } from '@yume-chan/adb';
import {
  AndroidMotionEventAction,
  ScrcpyControlMessageSerializer,
  ScrcpyOptions3_3_1,
} from '@yume-chan/scrcpy';
import { ReadableStream } from '@yume-chan/stream-extra';
import pino from 'pino';
import { MemoryCredentialStore } from '../adb/credential-store.js';
import { connectAdbTcp } from '../adb/tcp-transport.js';
import { startVirtualPhone, type VirtualPhone } from './index.js';

/** Reads exact byte counts from an AdbSocket's readable. */
class SocketReader {
  readonly #reader: ReadableStreamDefaultReader<Uint8Array>;
  #buffer = Buffer.alloc(0);
  constructor(socket: AdbSocket) {
    this.#reader = socket.readable.getReader() as unknown as ReadableStreamDefaultReader<Uint8Array>;
  }
  async read(length: number): Promise<Buffer> {
    while (this.#buffer.byteLength < length) {
      const { value, done } = await this.#reader.read();
      if (done) throw new Error(`socket ended with ${this.#buffer.byteLength} of ${length} bytes`);
      this.#buffer = Buffer.concat([this.#buffer, value]);
    }
    const out = this.#buffer.subarray(0, length);
    this.#buffer = this.#buffer.subarray(length);
    return out;
  }
}

async function connect(phone: VirtualPhone, credentials = new MemoryCredentialStore()): Promise<Adb> {
  const { connection } = await connectAdbTcp(phone.host, phone.port);
  const transport = await AdbDaemonTransport.authenticate({
    serial: phone.serial,
    connection,
    credentialStore: credentials,
  });
  return new Adb(transport);
}

describe('@yume-chan/adb against the virtual phone', () => {
  let phone: VirtualPhone;
  let adb: Adb;

  before(async () => {
    phone = await startVirtualPhone({ serial: 'yume-1', model: 'Yume Phone', auth: { mode: 'accept-any' } });
    adb = await connect(phone);
  });
  after(async () => {
    await adb?.close();
    await phone?.close();
  });

  test('authenticates and reads the banner', () => {
    assert.equal(adb.banner.model, 'Yume Phone');
    assert.ok(adb.banner.features.includes('shell_v2'));
  });

  test('exec (none protocol) returns stdout', async () => {
    assert.equal(await adb.subprocess.noneProtocol.spawnWaitText('echo hi'), 'hi\n');
    assert.equal(await adb.getProp('ro.product.model'), 'Yume Phone');
  });

  test('shell protocol separates stdout, stderr and the exit code', async () => {
    const shell = adb.subprocess.shellProtocol;
    assert.ok(shell, 'shell v2 is advertised');
    const result = await shell.spawnWaitText('echo out; nosuchcmd; exit 7');
    assert.equal(result.stdout, 'out\n');
    assert.equal(result.stderr, '/system/bin/sh: nosuchcmd: inaccessible or not found\n');
    assert.equal(result.exitCode, 7);
  });

  test('sync push then pull returns the same bytes and stat sees the size', async () => {
    const data = new Uint8Array(randomBytes(200_000));
    const sync = await adb.sync();
    try {
      await sync.write({
        filename: '/data/local/tmp/blob.bin',
        file: new ReadableStream({
          start(controller) {
            controller.enqueue(data);
            controller.close();
          },
        }),
      });
      const stat = await sync.lstat('/data/local/tmp/blob.bin');
      assert.equal(Number(stat.size), data.byteLength);
      const chunks: Uint8Array[] = [];
      const reader = sync.read('/data/local/tmp/blob.bin').getReader();
      for (let r = await reader.read(); !r.done; r = await reader.read()) chunks.push(r.value);
      assert.deepEqual(Buffer.concat(chunks), Buffer.from(data));
      const names = (await sync.readdir('/data/local/tmp')).map((e) => e.name);
      assert.ok(names.includes('blob.bin'));
    } finally {
      await sync.dispose();
    }
  });

  test('scrcpy: video socket yields codec meta and key-frame-flagged frames; control decodes', async () => {
    const sync = await adb.sync();
    await sync.write({
      filename: '/data/local/tmp/scrcpy-server.jar',
      file: new ReadableStream({
        start(c) {
          c.enqueue(new Uint8Array([0x50, 0x4b, 3, 4]));
          c.close();
        },
      }),
    });
    await sync.dispose();
    const scid = '1a2b3c4d';
    const server = await adb.subprocess.noneProtocol.spawn(
      `CLASSPATH=/data/local/tmp/scrcpy-server.jar app_process / com.genymobile.scrcpy.Server 3.3.3 scid=${scid} tunnel_forward=true video=true audio=false control=true`,
    );
    // The server opens its socket a moment after it starts, as the real one does.
    const video = await waitFor(
      'the scrcpy socket to open',
      () => adb.createSocket(`localabstract:scrcpy_${scid}`),
      Boolean,
      { intervalMs: 50 },
    );
    const control = await adb.createSocket(`localabstract:scrcpy_${scid}`);
    const reader = new SocketReader(video);
    assert.equal((await reader.read(1))[0], 0, 'dummy byte');
    const name = (await reader.read(64)).toString('utf8').replace(/\0+$/, '');
    assert.equal(name, 'Yume Phone');
    const meta = await reader.read(12);
    assert.equal(meta.toString('latin1', 0, 4), 'h264');
    assert.deepEqual([meta.readUInt32BE(4), meta.readUInt32BE(8)], [720, 1280]);
    const packets: { config: boolean; key: boolean; pts: bigint; size: number; nalType: number }[] = [];
    for (let i = 0; i < 40; i++) {
      const header = await reader.read(12);
      const ptsFlags = header.readBigUInt64BE(0);
      const size = header.readUInt32BE(8);
      const payload = await reader.read(size);
      const startCode = payload[2] === 1 ? 3 : 4;
      packets.push({
        config: ptsFlags >> 63n === 1n,
        key: ((ptsFlags >> 62n) & 1n) === 1n,
        pts: ptsFlags & ((1n << 62n) - 1n),
        size,
        nalType: payload[startCode]! & 0x1f,
      });
    }
    assert.equal(packets[0]?.config, true, 'first packet is the codec config');
    assert.equal(packets[0]?.nalType, 7, 'config starts with an SPS');
    const key = packets.slice(1).filter((p) => p.key);
    assert.ok(key.length >= 1, 'a key frame arrives');
    assert.equal(packets[1]?.key, true, 'the first frame is a key frame');
    assert.ok(
      packets.slice(2).some((p) => !p.key),
      'delta frames follow',
    );
    const pts = packets.slice(1).map((p) => p.pts);
    assert.ok(
      pts.every((v, i) => i === 0 || v > pts[i - 1]!),
      'pts increases',
    );

    const serializer = new ScrcpyControlMessageSerializer(new ScrcpyOptions3_3_1({}));
    const writer = control.writable.getWriter();
    await writer.write(
      serializer.injectTouch({
        action: AndroidMotionEventAction.Down,
        pointerId: 7n,
        pointerX: 100,
        pointerY: 200,
        videoWidth: 720,
        videoHeight: 1280,
        pressure: 1,
        actionButton: 0,
        buttons: 0,
      }) as never,
    );
    await writer.write(serializer.injectText('hello') as never);
    const touch = await phone.events.waitForControl((m) => m.type === 'inject-touch');
    assert.deepEqual(
      { ...touch },
      {
        type: 'inject-touch',
        action: AndroidMotionEventAction.Down,
        pointerId: 7n,
        x: 100,
        y: 200,
        screenWidth: 720,
        screenHeight: 1280,
        pressure: 1,
        actionButton: 0,
        buttons: 0,
      },
    );
    assert.deepEqual(await phone.events.waitForControl((m) => m.type === 'inject-text'), {
      type: 'inject-text',
      text: 'hello',
    });
    writer.releaseLock();
    await video.close();
    await control.close();
    await server.kill();
  });
});

describe('@yume-chan/adb with an allow-listed key', () => {
  test('a key outside the allow-list is never accepted; the listed key is', async () => {
    const trusted = new MemoryCredentialStore({ name: 'trusted' });
    const key = trusted.generateKey();
    // The adbkey.pub form of the trusted key, as `adb keygen` would write it.
    const { adbGeneratePublicKey } = await import('@yume-chan/adb');
    const pub = `${Buffer.from(adbGeneratePublicKey(key.buffer)).toString('base64')} trusted@test`;
    const logged: { msg?: string }[] = [];
    const phone = await startVirtualPhone({
      serial: 'yume-2',
      auth: { mode: 'allow-list', authorizedKeys: [pub] },
      logger: pino({ level: 'info' }, { write: (line: string) => void logged.push(JSON.parse(line)) }),
    });
    try {
      const adb = await connect(phone, trusted);
      assert.equal(await adb.subprocess.noneProtocol.spawnWaitText('echo ok'), 'ok\n');
      await adb.close();

      const { connection, close } = await connectAdbTcp(phone.host, phone.port);
      const attempt = AdbDaemonTransport.authenticate({
        serial: phone.serial,
        connection,
        credentialStore: new MemoryCredentialStore({ name: 'stranger' }),
      });
      const outcome = attempt.then(
        () => 'connected',
        () => 'unauthorized',
      );
      // Once the phone has the stranger's public key and turned it down, it says nothing more on
      // this connection (as adbd waits for a user who never taps "allow"): closing it then shows
      // whether the stranger ever got in.
      await waitFor(
        "the phone to turn the stranger's key down",
        () => logged.map((l) => l.msg),
        (messages) => messages.includes('host public key rejected; host stays unauthorized'),
      );
      close();
      assert.equal(await outcome, 'unauthorized');
    } finally {
      await phone.close();
    }
  });
});
