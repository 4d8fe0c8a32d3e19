// Ingest against a virtual phone: the agent's ADB client on TCP, the real scrcpy 3.3.3 protocol,
// RTP checked by an independent depacketizer and a real H.264 decoder.
import * as assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { waitFor } from '@cphone/proto/testing';
import { MemoryCredentialStore } from '../adb/credential-store.js';
import { DeviceAdb } from '../adb/device-adb.js';
import { startVirtualPhone, type VirtualPhone } from '../virtual-phone/index.js';
import { loadVideoFixture } from '../virtual-phone/scrcpy/h264-fixture.js';
import { ScrcpyServerProcess } from '../virtual-phone/scrcpy/scrcpy-server.js';
import { splitAnnexB } from './h264.js';
import { SCRCPY_SERVER_DEVICE_PATH, ScrcpyServerIntegrityError } from './scrcpy-server-binary.js';
import { ScreenIngest, type ScreenIngestOptions } from './screen-ingest.js';
import { createDecoder, H264Depacketizer, parseRtp, Recorder, writeStandInServer } from './testing.js';

const VIDEO = { ssrc: 0x11112222, payloadType: 102 };
const AUDIO = { ssrc: 0x33334444, payloadType: 111 };

describe('screen ingest from a virtual phone', () => {
  let phone: VirtualPhone;
  let device: DeviceAdb;
  let dir: string;
  let server: { path: string; sha256: string };
  const ingests: ScreenIngest[] = [];

  const start = (recorder: Recorder, extra: Partial<ScreenIngestOptions> = {}) => {
    const ingest = new ScreenIngest({
      device,
      server,
      sink: recorder.sink,
      video: VIDEO,
      audio: AUDIO,
      onFrame: recorder.onFrame,
      onClipboard: recorder.onClipboard,
      onVideoSize: recorder.onVideoSize,
      onSessionError: recorder.onSessionError,
      ...extra,
    });
    ingests.push(ingest);
    return ingest;
  };

  before(async () => {
    phone = await startVirtualPhone({ serial: 'ingest-1' });
    device = new DeviceAdb({ endpoint: phone, credentialStore: new MemoryCredentialStore() });
    dir = await mkdtemp(join(tmpdir(), 'cphone-screen-'));
    server = await writeStandInServer(dir);
  });
  after(async () => {
    await Promise.all(ingests.map((i) => i.close()));
    await device.close();
    await phone.close();
    await rm(dir, { recursive: true, force: true });
  });

  test('frames at the configured rate become RTP that depacketizes to the same access units and decodes', async () => {
    const recorder = new Recorder();
    const ingest = start(recorder, { capture: { maxFps: 30 } });
    await waitFor(
      '40 frames',
      () => recorder.frames.length,
      (n) => n >= 40,
    );
    assert.deepEqual(ingest.videoSize, { width: 720, height: 1280 });
    assert.deepEqual(recorder.sizes, ['720x1280']);
    const frames = recorder.frames.slice(0, 40);
    const steps = frames.slice(1).map((f, i) => Number(f.pts - frames[i]!.pts) / 1000);
    // On the 30 fps grid; a frame the phone could not send in time (a busy machine) is skipped,
    // never sent late or in a burst.
    const ticks = steps.map((s) => s / (1000 / 30));
    assert.ok(
      ticks.every((t) => t >= 0.99 && Math.abs(t - Math.round(t)) < 0.02),
      `PTS on the 33.3 ms grid: ${steps.join(', ')}`,
    );
    const sorted = [...ticks].sort((a, b) => a - b);
    assert.equal(Math.round(sorted[Math.floor(sorted.length / 2)]!), 1, 'most frames one tick apart');
    assert.ok(
      frames
        .slice(1)
        .every(
          (f, i) =>
            Math.abs(
              ((f.rtpTimestamp - frames[i]!.rtpTimestamp) >>> 0) - Number(f.pts - frames[i]!.pts) * 0.09,
            ) <= 1,
        ),
      '90 kHz RTP timestamps follow the PTS',
    );
    assert.ok(frames.every((f) => f.captureTimeMs <= f.receivedTimeMs));

    const depacketizer = new H264Depacketizer();
    for (const packet of recorder.video) depacketizer.push(packet);
    assert.ok(
      recorder.video.every((p) => p.byteLength <= 1212),
      'payloads within 1200 bytes',
    );
    assert.ok(
      recorder.video.every((p) => parseRtp(p).ssrc === VIDEO.ssrc && parseRtp(p).payloadType === 102),
    );
    // Every access unit the phone sent, byte for byte (the recording's frames, by content).
    const fixture = loadVideoFixture({ width: 720, height: 1280 });
    const known = new Set(fixture.frames.map((f) => Buffer.concat(splitAnnexB(f.data)).toString('hex')));
    const received = depacketizer.frames.map((f) =>
      f.nals.filter((n) => (n[0]! & 0x1f) !== 7 && (n[0]! & 0x1f) !== 8),
    );
    assert.ok(received.length >= 40);
    assert.ok(received.every((nals) => known.has(Buffer.concat(nals).toString('hex'))));
    const first = depacketizer.frames[0]!;
    assert.deepEqual(
      first.nals.slice(0, 2).map((n) => n[0]! & 0x1f),
      [7, 8],
      'the first frame is an IDR preceded by SPS and PPS',
    );

    const pictures: string[] = [];
    const decoder = await createDecoder(({ width, height }) => pictures.push(`${width}x${height}`));
    for (const frame of depacketizer.frames) for (const nal of frame.nals) decoder.decode(nal);
    decoder.release();
    assert.equal(pictures.length, depacketizer.frames.length, 'every frame decodes');
    assert.ok(pictures.every((p) => p === '720x1280'));
    // Audio: Opus packets, 20 ms = 960 ticks of 48 kHz apart.
    const audio = recorder.audio.map(parseRtp);
    assert.ok(audio.length > 20);
    assert.ok(audio.slice(1).every((p, i) => (p.timestamp - audio[i]!.timestamp) >>> 0 === 960));
    assert.ok(audio.every((p) => p.ssrc === AUDIO.ssrc && p.payloadType === 111));
    assert.equal(audio[0]?.marker, true);
    await ingest.close();
  });

  test('a still screen sends nothing; a key frame comes within 1 s of a request', async () => {
    const recorder = new Recorder();
    const ingest = start(recorder);
    await waitFor(
      'streaming',
      () => recorder.frames.length,
      (n) => n >= 3,
    );
    const fromFrame = recorder.frames.length;
    const fromAudio = recorder.audio.length;
    const stillAt = performance.timeOrigin + performance.now();
    phone.device.display.setStill(true);
    try {
      // The phone's own clock, read from its audio (one packet per 20 ms, the clock video shares):
      // 300 ms of it pass with the screen still.
      const audioMs = () => {
        const packets = recorder.audio.slice(fromAudio).map(parseRtp);
        return packets.length < 2 ? 0 : ((packets.at(-1)!.timestamp - packets[0]!.timestamp) >>> 0) / 48;
      };
      await waitFor('300 ms of the phone clock', audioMs, (ms) => ms >= 300);
      const asked = performance.now();
      ingest.requestKeyframe();
      ingest.requestKeyframe(); // coalesced
      const keyAt = await waitFor(
        'a key frame',
        () => recorder.frames.findIndex((f, i) => i >= fromFrame && f.keyframe),
        (i) => i >= 0,
        { timeoutMs: 1000 },
      );
      const waited = performance.now() - asked;
      assert.ok(waited < 1000, `${waited} ms`);
      // The video stream is ordered: what came before the key frame is all the phone sent while
      // still, and that is only what it had captured before (capture times carry the transit of
      // the session's fastest frame, well under a frame interval).
      const whileStill = recorder.frames.slice(fromFrame, keyAt);
      assert.ok(
        whileStill.every((f) => f.captureTimeMs < stillAt + 1000 / 30),
        `a still screen sends nothing: ${whileStill.map((f) => Math.round(f.captureTimeMs - stillAt)).join(', ')} ms`,
      );
      assert.ok(recorder.frames[keyAt]!.packets >= 2, 'parameter sets go with it');
      assert.equal(phone.events.control.filter((m) => m.type === 'reset-video').length >= 1, true);
    } finally {
      phone.device.display.setStill(false);
    }
    await ingest.close();
  });

  test('rotation: the size changes and the stream goes on on the same SSRC; taps land in portrait and landscape', async () => {
    const recorder = new Recorder();
    const ingest = start(recorder, { capture: { maxSize: 640 } });
    await waitFor(
      'streaming',
      () => recorder.frames.length,
      (n) => n >= 2,
    );
    assert.deepEqual(ingest.videoSize, { width: 360, height: 640 });
    const tap = async (x: number, y: number, frameWidth: number, frameHeight: number, pointerId: number) => {
      const base = { type: 'touch' as const, pointerId, x, y, frameWidth, frameHeight };
      await ingest.input({ ...base, action: 'down', pressure: 0.5 });
      await ingest.input({ ...base, action: 'up', pressure: 0 });
    };
    // The viewer shows the video at twice its size: coordinates are in what it shows.
    await tap(360, 640, 720, 1280, 5);
    await phone.events.waitForInput((e) => e.kind === 'motion' && e.pointerId === 5n && e.action === 'up');
    const before = recorder.video.length;
    await ingest.input({ type: 'rotate' });
    await waitFor(
      'the landscape video',
      () => ingest.videoSize,
      (size) => size?.width === 640,
    );
    await waitFor(
      'landscape frames',
      () => recorder.frames.filter((f) => f.keyframe).length,
      (n) => n >= 2,
    );
    assert.deepEqual(recorder.sizes, ['360x640', '640x360']);
    await tap(160, 90, 640, 360, 6);
    await tap(100, 100, 360, 640, 7); // still on a portrait frame: not delivered
    await phone.events.waitForInput((e) => e.kind === 'motion' && e.pointerId === 6n && e.action === 'up');
    const motions = phone.events.input.flatMap((e) =>
      e.kind === 'motion' && e.pointerId >= 5n ? [[Number(e.pointerId), e.action, e.x, e.y, e.rotation]] : [],
    );
    // The display is 720x1280; the video 360x640 (max_size 640), so the phone doubles the points.
    assert.deepEqual(motions, [
      [5, 'down', 360, 640, 0],
      [5, 'up', 360, 640, 0],
      [6, 'down', 320, 180, 1],
      [6, 'up', 320, 180, 1],
    ]);
    const packets = recorder.video.map(parseRtp);
    assert.ok(packets.every((p) => p.ssrc === VIDEO.ssrc));
    for (let i = before + 1; i < packets.length; i++) {
      assert.equal(packets[i]!.sequence, (packets[i - 1]!.sequence + 1) & 0xffff, 'sequence continues');
    }
    const depacketizer = new H264Depacketizer();
    for (const p of recorder.video) depacketizer.push(p);
    const pictures: string[] = [];
    const decoder = await createDecoder(({ width, height }) => pictures.push(`${width}x${height}`));
    for (const frame of depacketizer.frames) for (const nal of frame.nals) decoder.decode(nal);
    decoder.release();
    // TinyH264 reports the coded size: 360 rounds up to 23 macroblocks.
    assert.equal(pictures.length, depacketizer.frames.length, 'every frame decodes');
    assert.ok(
      pictures.includes('368x640') && pictures.at(-1) === '640x368',
      'one decoder follows the rotation',
    );
    await ingest.input({ type: 'rotate' });
    await waitFor(
      'portrait again',
      () => ingest.videoSize,
      (size) => size?.width === 360,
    );
    await ingest.close();
  });

  test('a killed scrcpy server restarts with backoff; timestamps and sequence numbers go on', async () => {
    const recorder = new Recorder();
    const ingest = start(recorder, { backoff: { baseMs: 200, random: () => 0.999 } });
    const kill = () => {
      for (const listener of phone.device.abstractSockets.values()) {
        if (listener instanceof ScrcpyServerProcess) listener.stop();
      }
    };
    await waitFor('streaming', () => ingest.streaming && recorder.frames.length > 2, Boolean);
    const gaps: number[] = [];
    for (let i = 0; i < 2; i++) {
      const count = recorder.frames.length;
      const killedAt = performance.now();
      kill();
      await waitFor(
        'stopped',
        () => ingest.streaming,
        (streaming) => !streaming,
      );
      await waitFor('streaming again', () => ingest.streaming && recorder.frames.length > count, Boolean, {
        timeoutMs: 8000,
      });
      gaps.push(performance.now() - killedAt);
    }
    assert.equal(ingest.sessions, 3);
    assert.ok(gaps[0]! >= 190 && gaps[1]! >= 390, `backoff doubles: ${gaps.map(Math.round).join(', ')} ms`);
    const depacketizer = new H264Depacketizer(); // throws on a sequence gap
    for (const p of recorder.video) depacketizer.push(p);
    const stamps = depacketizer.frames.map((f) => f.timestamp);
    assert.ok(
      stamps.slice(1).every((t, i) => (t - stamps[i]!) >>> 0 < 90_000 * 2),
      'RTP timestamps only move forward, by about the wall time between frames',
    );
    await ingest.close();
  });

  test('text in any script arrives intact; the clipboard goes both ways', async () => {
    const recorder = new Recorder();
    const ingest = start(recorder);
    await waitFor('streaming', () => ingest.streaming, Boolean);
    phone.device.focusedField.clear();
    const text = 'Hi 你好，世界 こんにちは 안녕하세요 🙂!';
    const from = phone.events.control.length;
    await ingest.input({ type: 'text', text });
    await phone.events.waitForControl((m) => m.type === 'inject-text' && m.text === '!');
    assert.equal(phone.device.focusedField.text, text);
    const sent = phone.events.control
      .slice(from)
      .flatMap((m) =>
        m.type === 'inject-text' ? [['type', m.text]] : m.type === 'set-clipboard' ? [['paste', m.text]] : [],
      );
    assert.deepEqual(sent, [
      ['type', 'Hi '],
      ['paste', '你好，世界'],
      ['type', ' '],
      ['paste', 'こんにちは'],
      ['type', ' '],
      ['paste', '안녕하세요'],
      ['type', ' '],
      ['paste', '🙂'],
      ['type', '!'],
    ]);

    await ingest.input({ type: 'clipboard', text: 'from the viewer', paste: false });
    assert.equal(phone.device.clipboard.text, 'from the viewer');
    phone.device.clipboard.set('copied on the phone ✂', 'phone');
    await waitFor(
      'the push',
      () => recorder.clipboard,
      (texts) => texts.includes('copied on the phone ✂'),
    );
    recorder.clipboard.length = 0;
    await ingest.input({ type: 'get-clipboard' });
    assert.deepEqual(recorder.clipboard, ['copied on the phone ✂']);
    await ingest.input({ type: 'nav', button: 'home' });
    await ingest.input({ type: 'key', action: 'down', keycode: 29, metaState: 1, repeat: 0 });
    await phone.events.waitForInput((e) => e.kind === 'key' && e.keyCode === 29);
    assert.equal(phone.device.focusedField.text, `${text}A`);
    const keys = phone.events.input.flatMap((e) => (e.kind === 'key' ? [[e.action, e.keyCode]] : []));
    assert.deepEqual(keys.slice(-3), [
      ['down', 3],
      ['up', 3],
      ['down', 29],
    ]);
    await ingest.close();
  });

  test('a rebooting phone: ingest waits for boot and streams again on the same SSRC', async () => {
    const recorder = new Recorder();
    const ingest = start(recorder, { backoff: { baseMs: 100, capMs: 400 } });
    await waitFor('streaming', () => ingest.streaming && recorder.frames.length > 2, Boolean);
    phone.reboot();
    await waitFor(
      'down',
      () => ingest.streaming,
      (streaming) => !streaming,
    );
    const count = recorder.frames.length;
    await phone.waitForBoot();
    await waitFor(
      'streaming after the reboot',
      () => ingest.streaming && recorder.frames.length > count + 2,
      Boolean,
      { timeoutMs: 8000 },
    );
    assert.equal(ingest.sessions, 2);
    const depacketizer = new H264Depacketizer(); // throws on a sequence gap
    for (const p of recorder.video) depacketizer.push(p);
    assert.ok(recorder.video.every((p) => parseRtp(p).ssrc === VIDEO.ssrc));
    await ingest.close();
  });

  test('a server file with the wrong hash is never pushed; the failure is reported and retried', async () => {
    if (phone.device.fs.stat(SCRCPY_SERVER_DEVICE_PATH)) phone.device.fs.remove(SCRCPY_SERVER_DEVICE_PATH);
    const recorder = new Recorder();
    const ingest = start(recorder, {
      server: { path: server.path, sha256: '0'.repeat(64) },
      backoff: { baseMs: 50, capMs: 100 },
    });
    const errors = await waitFor(
      'the first try and its retry',
      () => recorder.errors,
      (e) => e.length >= 2,
    );
    assert.ok(
      errors.every((e) => e instanceof ScrcpyServerIntegrityError),
      errors.map(String).join('; '),
    );
    assert.equal(ingest.sessions, 0);
    assert.equal(recorder.video.length, 0);
    assert.equal(phone.device.fs.stat(SCRCPY_SERVER_DEVICE_PATH), undefined, 'nothing pushed');
    await ingest.close();
  });
});
