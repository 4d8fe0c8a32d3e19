// The virtual phone's scrcpy server against the real client library (@yume-chan/adb-scrcpy over
// @yume-chan/adb on TCP): what it streams, how it answers on the control socket, and that it
// serves only its own version, as scrcpy server 3.3.3 does on a Redroid phone.
import * as assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { waitFor } from '@cphone/proto/testing';
import { Adb, AdbDaemonTransport } from '@yume-chan/adb';
import { AdbScrcpyClient, AdbScrcpyExitedError, AdbScrcpyOptions3_3_3 } from '@yume-chan/adb-scrcpy';
import {
  AndroidKeyCode,
  AndroidKeyEventAction,
  AndroidMotionEventAction,
  h264ParseConfiguration,
  ScrcpyInstanceId,
  type ScrcpyMediaStreamPacket,
} from '@yume-chan/scrcpy';
import { ReadableStream } from '@yume-chan/stream-extra';
import { MemoryCredentialStore } from '../../adb/credential-store.js';
import { connectAdbTcp } from '../../adb/tcp-transport.js';
import { startVirtualPhone, type VirtualPhone } from '../phone.js';

const JAR = '/data/local/tmp/scrcpy-server.jar';
const delay = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));
type Init = ConstructorParameters<typeof AdbScrcpyOptions3_3_3<boolean>>[0];

async function connect(phone: VirtualPhone): Promise<Adb> {
  const { connection } = await connectAdbTcp(phone.host, phone.port);
  const transport = await AdbDaemonTransport.authenticate({
    serial: phone.serial,
    connection,
    credentialStore: new MemoryCredentialStore(),
  });
  const adb = new Adb(transport);
  // The phone only checks that the jar is there; its bytes are not run.
  await AdbScrcpyClient.pushServer(
    adb,
    new ReadableStream({
      start(c) {
        c.enqueue(new Uint8Array([0x50, 0x4b, 3, 4]));
        c.close();
      },
    }),
    JAR,
  );
  return adb;
}

function startScrcpy(adb: Adb, init: Init = {}, version?: string) {
  return AdbScrcpyClient.start(
    adb,
    JAR,
    new AdbScrcpyOptions3_3_3<boolean>(
      { tunnelForward: true, scid: ScrcpyInstanceId.random(), ...init },
      version ? { version } : undefined,
    ),
  );
}

interface Received {
  packet: ScrcpyMediaStreamPacket;
  atMs: number;
}

/** Reads packets until `until` says stop (or the timeout), noting when each arrived. */
async function collect(
  stream: ReadableStream<ScrcpyMediaStreamPacket>,
  until: (packets: Received[]) => boolean,
  timeoutMs = 5000,
): Promise<Received[]> {
  const reader = stream.getReader();
  const out: Received[] = [];
  const deadline = performance.now() + timeoutMs;
  try {
    while (!until(out)) {
      const left = deadline - performance.now();
      if (left <= 0) throw new Error(`timed out after ${out.length} packets`);
      const next = await Promise.race([
        reader.read(),
        new Promise<never>((_, reject) => setTimeout(() => reject(new Error('read timed out')), left)),
      ]);
      if (next.done) break;
      out.push({ packet: next.value, atMs: performance.now() });
    }
  } finally {
    reader.releaseLock();
  }
  return out;
}

async function videoOf(client: Awaited<ReturnType<typeof startScrcpy>>) {
  const video = await client.videoStream;
  assert.ok(video, 'video is on');
  return video;
}

const frames = (received: Received[]) =>
  received.flatMap(({ packet, atMs }) => (packet.type === 'data' ? [{ ...packet, atMs }] : []));

async function shell(adb: Adb, command: string): Promise<string> {
  const shellProtocol = adb.subprocess.shellProtocol;
  assert.ok(shellProtocol);
  return (await shellProtocol.spawnWaitText(command)).stdout;
}

describe('scrcpy server 3.3.3 on the virtual phone', () => {
  let phone: VirtualPhone;
  let adb: Adb;

  before(async () => {
    phone = await startVirtualPhone({ serial: 'scrcpy-1' });
    adb = await connect(phone);
  });
  after(async () => {
    await adb.close();
    await phone.close();
  });

  test('refuses a client of another version before opening any socket', async () => {
    const error = await startScrcpy(adb, { audio: false }, '3.3.2').then(
      () => undefined,
      (e: unknown) => e,
    );
    assert.ok(error instanceof AdbScrcpyExitedError, `got ${String(error)}`);
    assert.match(
      error.output.join('\n'),
      /ERROR: The server version \(3\.3\.3\) does not match the client \(3\.3\.2\)/,
    );
    const process = await adb.subprocess.shellProtocol!.spawnWait(
      `CLASSPATH=${JAR} app_process / com.genymobile.scrcpy.Server 1.24 tunnel_forward=true`,
    );
    assert.equal(process.exitCode, 1);
    assert.match(
      new TextDecoder().decode(process.stderr),
      /java\.lang\.IllegalArgumentException: The server version/,
    );
  });

  test('video: codec header, config, key frame first, real PTS at the configured rate', async () => {
    const client = await startScrcpy(adb, { audio: false, control: false, maxFps: 20 });
    const video = await videoOf(client);
    assert.deepEqual(
      [video.metadata.codec, video.metadata.width, video.metadata.height],
      [0x68323634, 720, 1280],
    );
    assert.equal(video.metadata.deviceName, 'cphone Virtual');
    const received = await collect(video.stream, (p) => frames(p).length >= 16);
    assert.equal(received[0]?.packet.type, 'configuration');
    const config = h264ParseConfiguration(received[0]!.packet.data);
    assert.deepEqual(
      [config.profileIndex, config.croppedWidth, config.croppedHeight],
      [66, 720, 1280],
      'Constrained Baseline at the video size',
    );
    const data = frames(received);
    assert.equal(data[0]?.keyframe, true);
    const pts = data.map((f) => Number(f.pts) / 1000);
    const steps = pts.slice(1).map((v, i) => v - pts[i]!);
    // A frame the reader was not ready for is skipped, as a surface keeps only the latest one.
    assert.ok(
      steps.every((step) => step > 0 && Math.abs(step / 50 - Math.round(step / 50)) < 0.02),
      `PTS advance by whole 50 ms ticks at max_fps 20 (${steps.join(', ')})`,
    );
    const sorted = steps.map((step) => Math.round(step)).sort((a, b) => a - b);
    assert.equal(
      sorted[Math.floor(sorted.length / 2)],
      50,
      `most frames one tick apart: ${steps.join(', ')}`,
    );
    // Past the start-up (the first frames wait for the client to parse the header), frames arrive
    // as they are captured.
    const spanPts = pts.at(-1)! - pts[5]!;
    const spanWall = data.at(-1)!.atMs - data[5]!.atMs;
    assert.ok(
      Math.abs(spanWall - spanPts) < 100,
      `sent at the rate they were captured (${spanWall} vs ${spanPts} ms)`,
    );
    await client.close();
  });

  test('audio: Opus with its OpusHead config packet, 20 ms packets stamped with capture time', async () => {
    // The device name goes on the first socket, which only a video reader expects.
    const client = await startScrcpy(adb, { video: false, control: false, sendDeviceMeta: false });
    const audio = await client.audioStream;
    assert.ok(audio?.type === 'success');
    assert.equal(audio.codec.webCodecId, 'opus');
    const received = await collect(audio.stream, (p) => p.length >= 26);
    const [config, ...rest] = received;
    assert.equal(config?.packet.type, 'configuration');
    assert.equal(Buffer.from(config!.packet.data).toString('latin1', 0, 8), 'OpusHead');
    assert.equal(config!.packet.data.byteLength, 19);
    const pts = frames(rest).map((f) => Number(f.pts));
    assert.ok(
      pts.every((v, i) => i === 0 || v - pts[i - 1]! === 20_000),
      'one packet per 20 ms',
    );
    const spanWall = rest.at(-1)!.atMs - rest[0]!.atMs;
    // 500 ms of sound; a tight loop would hand it over in a few ms.
    assert.ok(spanWall > 250, `paced by the clock, not a tight loop (${spanWall} ms for 25 packets)`);
    await client.close();
  });

  test('rotation restarts the video at the new size; touches for the old size are ignored', async () => {
    const client = await startScrcpy(adb, { audio: false, maxSize: 640 });
    const video = await videoOf(client);
    const controller = client.controller!;
    assert.deepEqual([video.metadata.width, video.metadata.height], [360, 640]);
    const sizes: string[] = [];
    video.sizeChanged(({ width, height }: { width: number; height: number }) =>
      sizes.push(`${width}x${height}`),
    );
    await collect(video.stream, (p) => frames(p).length >= 2);
    const tap = async (x: number, y: number, width: number, height: number, pointerId = 1n) => {
      for (const action of [AndroidMotionEventAction.Down, AndroidMotionEventAction.Up]) {
        await controller.injectTouch({
          action,
          pointerId,
          pointerX: x,
          pointerY: y,
          videoWidth: width,
          videoHeight: height,
          pressure: action === AndroidMotionEventAction.Down ? 1 : 0,
          actionButton: 0,
          buttons: 0,
        });
      }
    };
    const motions = () => phone.events.input.filter((e) => e.kind === 'motion');
    const before = motions().length;
    await tap(180, 320, 360, 640);
    await controller.rotateDevice();
    const after = await collect(video.stream, (p) =>
      p.some((r) => r.packet.type === 'data' && r.packet.keyframe),
    );
    const config = after.find((r) => r.packet.type === 'configuration');
    assert.ok(config, 'a new config packet');
    assert.deepEqual(
      [
        h264ParseConfiguration(config.packet.data).croppedWidth,
        h264ParseConfiguration(config.packet.data).croppedHeight,
      ],
      [640, 360],
    );
    assert.deepEqual(sizes.slice(-1), ['640x360']);
    await tap(10, 10, 360, 640); // for the portrait video: ignored
    await tap(320, 180, 640, 360, 2n);
    await phone.events.waitForInput((e) => e.kind === 'motion' && e.pointerId === 2n && e.action === 'up');
    const landed = motions()
      .slice(before)
      .map((m) => (m.kind === 'motion' ? [m.action, m.x, m.y, m.rotation] : []));
    assert.deepEqual(landed, [
      ['down', 360, 640, 0],
      ['up', 360, 640, 0],
      ['down', 640, 360, 1],
      ['up', 640, 360, 1],
    ]);
    assert.match(await shell(adb, 'uiautomator dump /dev/tty'), /<hierarchy rotation="1">/);
    await controller.rotateDevice();
    await collect(video.stream, (p) => p.some((r) => r.packet.type === 'configuration'));
    assert.equal(phone.device.display.rotation, 0);
    await client.close();
  });

  test('a still screen sends nothing until RESET_VIDEO, then a key frame at once', async () => {
    const client = await startScrcpy(adb, { audio: false });
    const video = await videoOf(client);
    await collect(video.stream, (p) => frames(p).length >= 3);
    phone.device.display.setStill(true);
    try {
      const reader = video.stream.getReader();
      // Whatever was in flight when the screen stopped changing; the read left pending when the
      // stream goes quiet is the one that receives the reset's first packet.
      let pending = reader.read();
      let drained = 0;
      while ((await Promise.race([pending, delay(300).then(() => 'idle' as const)])) !== 'idle') {
        drained++;
        pending = reader.read();
      }
      assert.ok(drained <= 2, `${drained} frames after the screen went still`);
      const asked = performance.now();
      await client.controller!.resetVideo();
      const configuration = await pending;
      const keyFrame = await reader.read();
      const waited = performance.now() - asked;
      assert.equal(configuration.value?.type, 'configuration');
      assert.ok(keyFrame.value?.type === 'data' && keyFrame.value.keyframe, 'an IDR follows the config');
      assert.ok(waited < 500, `key frame ${waited} ms after the request`);
      const quiet = await Promise.race([reader.read(), delay(300).then(() => 'idle' as const)]);
      assert.equal(quiet, 'idle', 'and nothing more while the screen stays still');
      reader.releaseLock();
    } finally {
      phone.device.display.setStill(false);
    }
    await client.close();
  });

  test('text: ASCII types, CJK and emoji only arrive through the clipboard; clipboard both ways', async () => {
    const client = await startScrcpy(adb, { video: false, audio: false, sendDeviceMeta: false });
    const controller = client.controller!;
    const pushed = client.clipboard!.getReader();
    phone.device.focusedField.clear();
    await controller.injectText('Hi! ');
    await controller.injectText('你好🙂');
    await controller.injectKeyCode({
      action: AndroidKeyEventAction.Down,
      keyCode: AndroidKeyCode.KeyA,
      repeat: 0,
      metaState: 1, // shift
    });
    await phone.events.waitForInput((e) => e.kind === 'key' && e.keyCode === AndroidKeyCode.KeyA);
    assert.equal(phone.device.focusedField.text, 'Hi! A', 'INJECT_TEXT typed nothing it could not map');
    const text = '你好，世界 こんにちは 안녕하세요 🙂';
    // Sequenced: resolves on the phone's ACK_CLIPBOARD.
    await controller.setClipboard({ sequence: 7n, paste: true, content: text });
    assert.equal(phone.device.focusedField.text, `Hi! A${text}`);
    assert.equal(phone.device.clipboard.text, text);
    const dump = await shell(adb, 'uiautomator dump /dev/tty');
    assert.ok(dump.includes(`text="Hi! A${text}"`), dump);
    assert.match(dump, /UI hierchary dumped to: \/dev\/tty/);

    await shell(adb, "cmd clipboard set-text 'copied on the phone'");
    assert.equal((await pushed.read()).value, 'copied on the phone');
    assert.equal(await shell(adb, 'cmd clipboard get-text'), 'copied on the phone\n');
    pushed.releaseLock();
    await client.close();
  });

  test('GET_CLIPBOARD is answered with a CLIPBOARD message when autosync is off', async () => {
    // By hand: @yume-chan/scrcpy reads device messages only with autosync on.
    const scid = '0badcafe';
    const server = await adb.subprocess.noneProtocol.spawn(
      `CLASSPATH=${JAR} app_process / com.genymobile.scrcpy.Server 3.3.3 scid=${scid} tunnel_forward=true video=false audio=false clipboard_autosync=false`,
    );
    // The server listens once app_process has parsed its options; until then adbd refuses the socket.
    const socket = await waitFor(
      'the server to listen',
      () => adb.createSocket(`localabstract:scrcpy_${scid}`),
      () => true,
      { timeoutMs: 5000 },
    );
    const reader = socket.readable.getReader();
    let buffered = Buffer.alloc(0);
    const read = async (n: number): Promise<Buffer> => {
      while (buffered.byteLength < n) {
        const { value, done } = await reader.read();
        if (done) throw new Error('control socket closed');
        buffered = Buffer.concat([buffered, value]);
      }
      const out = buffered.subarray(0, n);
      buffered = buffered.subarray(n);
      return out;
    };
    await read(1 + 64); // dummy byte, device name
    phone.device.clipboard.set('on the phone 📋', 'phone');
    const writer = socket.writable.getWriter();
    await writer.write(Uint8Array.of(8, 0) as never); // GET_CLIPBOARD, copy key none
    const head = await read(5);
    assert.equal(head[0], 0, 'CLIPBOARD device message');
    assert.equal((await read(head.readUInt32BE(1))).toString('utf8'), 'on the phone 📋');
    writer.releaseLock();
    reader.releaseLock();
    await socket.close();
    await server.kill();
  });
});

describe('a phone before Android 11', () => {
  test('disables audio as the real server does', async () => {
    const phone = await startVirtualPhone({ serial: 'scrcpy-10', android: { sdk: 29, release: '10' } });
    const adb = await connect(phone);
    try {
      const client = await startScrcpy(adb, { video: false, control: false, sendDeviceMeta: false });
      const audio = await client.audioStream;
      assert.equal(audio?.type, 'disabled');
      await client.close();
    } finally {
      await adb.close();
      await phone.close();
    }
  });
});
