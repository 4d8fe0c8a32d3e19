// Changing what the phone encodes while viewers watch: against a virtual phone whose adbd log shows
// the command line each scrcpy server was started with, so the test reads the options the phone
// was given, not the ingest's idea of them.
import * as assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { waitFor } from '@cphone/proto/testing';
import { pino } from 'pino';
import { MemoryCredentialStore } from '../adb/credential-store.js';
import { DeviceAdb } from '../adb/device-adb.js';
import { startVirtualPhone, type VirtualPhone } from '../virtual-phone/index.js';
import { parseServerOptions, type ScrcpyServerOptions } from '../virtual-phone/scrcpy/server-options.js';
import type { FrameInfo } from './media-sink.js';
import type { ScrcpyServerBinary } from './scrcpy-server-binary.js';
import { ScreenIngest } from './screen-ingest.js';
import { createDecoder, H264Depacketizer, parseRtp, Recorder, writeStandInServer } from './testing.js';

const VIDEO = { ssrc: 0x5555aaaa, payloadType: 102 };
const AUDIO = { ssrc: 0x6666bbbb, payloadType: 111 };
const SERVER_CLASS = 'com.genymobile.scrcpy.Server ';

/** PTS steps of consecutive frames, in ticks of `fps`: whole numbers when on the grid. */
const ticks = (frames: FrameInfo[], fps: number): number[] =>
  frames.slice(1).map((f, i) => Number(f.pts - frames[i]!.pts) / 1000 / (1000 / fps));
const onGrid = (steps: number[]): boolean =>
  steps.every((t) => t >= 0.99 && Math.abs(t - Math.round(t)) < 0.02);

describe('screen ingest reconfigure on a virtual phone', () => {
  let phone: VirtualPhone;
  let device: DeviceAdb;
  let dir: string;
  let server: ScrcpyServerBinary;
  /** Options of every scrcpy server the phone's adbd was asked to start, in order. */
  const serverStarts: ScrcpyServerOptions[] = [];
  const ingests: ScreenIngest[] = [];

  const start = (recorder: Recorder) => {
    const ingest = new ScreenIngest({
      device,
      server,
      sink: recorder.sink,
      video: VIDEO,
      audio: AUDIO,
      capture: { maxSize: 1280, maxFps: 30, videoBitRate: 2_000_000 },
      onFrame: recorder.onFrame,
      onVideoSize: recorder.onVideoSize,
      onSessionError: recorder.onSessionError,
    });
    ingests.push(ingest);
    return ingest;
  };

  before(async () => {
    // adbd logs each stream it opens with its service: `exec:CLASSPATH=… app_process / <class> 3.3.3 k=v…`.
    const logger = pino(
      { level: 'debug' },
      {
        write: (line: string) => {
          const { service } = JSON.parse(line) as { service?: unknown };
          if (typeof service !== 'string' || !service.includes(SERVER_CLASS)) return;
          serverStarts.push(parseServerOptions(service.split(SERVER_CLASS)[1]!.split(' ')));
        },
      },
    );
    phone = await startVirtualPhone({ serial: 'reconfigure-1', logger });
    device = new DeviceAdb({ endpoint: phone, credentialStore: new MemoryCredentialStore() });
    dir = await mkdtemp(join(tmpdir(), 'cphone-reconfigure-'));
    server = await writeStandInServer(dir);
  });
  after(async () => {
    await Promise.all(ingests.map((i) => i.close()));
    await device.close();
    await phone.close();
    await rm(dir, { recursive: true, force: true });
  });

  test('the phone encodes with the new options; the RTP streams go on without a gap', async (t) => {
    const recorder = new Recorder();
    const ingest = start(recorder);
    await waitFor(
      'streaming',
      () => recorder.frames.length,
      (n) => n >= 10,
    );
    const startsBefore = serverStarts.length;
    const audioBefore = recorder.audio.length;

    const asked = performance.now();
    await ingest.reconfigure({ maxSize: 640, maxFps: 15, videoBitRate: 500_000 });
    const switchMs = performance.now() - asked;
    const first = recorder.sizeAt[1]!;
    await waitFor(
      'frames at the new size',
      () => recorder.frames.length,
      (n) => n >= first + 12,
    );
    const gapMs = recorder.frames[first]!.receivedTimeMs - recorder.frames[first - 1]!.receivedTimeMs;
    t.diagnostic(
      `switch ${switchMs.toFixed(1)} ms to the first new frame, ${gapMs.toFixed(1)} ms between frames`,
    );

    // What the phone was asked for.
    const started = serverStarts.slice(startsBefore - 1).map((o) => [o.maxSize, o.maxFps, o.videoBitRate]);
    assert.deepEqual(started, [
      [1280, 30, 2_000_000],
      [640, 15, 500_000],
    ]);
    assert.equal(ingest.sessions, 2);
    assert.deepEqual(recorder.errors, []);
    assert.equal(ingest.capture.videoBitRate, 500_000);
    // What it encodes: the size, a key frame first, 15 fps.
    assert.deepEqual(ingest.videoSize, { width: 360, height: 640 });
    assert.deepEqual(recorder.sizes, ['720x1280', '360x640']);
    assert.ok(
      recorder.frames[first]!.keyframe && recorder.frames[first]!.packets >= 2,
      'an IDR with SPS/PPS',
    );
    const steps = ticks(recorder.frames.slice(first, first + 12), 15);
    assert.ok(onGrid(steps), `PTS on the 66.7 ms grid: ${steps.join(', ')}`);
    assert.ok(onGrid(ticks(recorder.frames.slice(0, first), 30)), 'the old session ran at 30 fps');
    assert.ok(switchMs < 1000, `${switchMs} ms`);

    // One video stream: one SSRC, sequence numbers without a gap (the depacketizer throws on one),
    // timestamps only forward, and one decoder takes it across the change.
    const packets = recorder.video.map(parseRtp);
    assert.ok(packets.every((p) => p.ssrc === VIDEO.ssrc));
    const depacketizer = new H264Depacketizer();
    for (const p of recorder.video) depacketizer.push(p);
    const stamps = depacketizer.frames.map((f) => f.timestamp);
    const forward = stamps.slice(1).map((s, i) => (s - stamps[i]!) >>> 0);
    assert.ok(
      forward.every((d) => d > 0 && d < 90_000),
      `RTP timestamps move forward by the wall time between frames: ${forward.join(', ')}`,
    );
    const pictures: string[] = [];
    const decoder = await createDecoder(({ width, height }) => pictures.push(`${width}x${height}`));
    for (const frame of depacketizer.frames) for (const nal of frame.nals) decoder.decode(nal);
    decoder.release();
    assert.equal(pictures.length, depacketizer.frames.length, 'every frame decodes');
    // TinyH264 reports the coded size: 360 rounds up to 23 macroblocks.
    assert.deepEqual([...new Set(pictures)], ['720x1280', '368x640']);

    // Audio goes on too: one SSRC, consecutive sequence numbers, 48 kHz timestamps forward.
    const audio = recorder.audio.slice(audioBefore - 1).map(parseRtp);
    assert.ok(audio.every((p) => p.ssrc === AUDIO.ssrc));
    assert.ok(audio.slice(1).every((p, i) => p.sequence === ((audio[i]!.sequence + 1) & 0xffff)));
    assert.ok(audio.slice(1).every((p, i) => (p.timestamp - audio[i]!.timestamp) >>> 0 > 0));
    await ingest.close();
  });

  test('switches take tens of milliseconds; unchanged settings restart nothing', async (t) => {
    const recorder = new Recorder();
    const ingest = start(recorder);
    await waitFor(
      'streaming',
      () => recorder.frames.length,
      (n) => n >= 5,
    );
    await ingest.reconfigure({ maxSize: 1280 });
    assert.equal(ingest.sessions, 1, 'nothing changed, nothing restarted');
    assert.throws(() => ingest.reconfigure({ videoBitRate: 0 }), RangeError);

    const settings = [
      { maxSize: 640, maxFps: 15, videoBitRate: 500_000 },
      { maxSize: 1280, maxFps: 30, videoBitRate: 2_000_000 },
    ];
    const switches: number[] = [];
    const gaps: number[] = [];
    for (let i = 0; i < 6; i++) {
      const asked = performance.now();
      await ingest.reconfigure(settings[i % 2]!);
      switches.push(performance.now() - asked);
      const first = recorder.sizeAt.at(-1)!;
      gaps.push(recorder.frames[first]!.receivedTimeMs - recorder.frames[first - 1]!.receivedTimeMs);
      await waitFor(
        'a few frames',
        () => recorder.frames.length,
        (n) => n >= first + 3,
      );
    }
    const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1]!;
    t.diagnostic(
      `reconfigure to first new frame: median ${median(switches).toFixed(1)} ms, max ${Math.max(...switches).toFixed(1)} ms; ` +
        `last old to first new frame: median ${median(gaps).toFixed(1)} ms, max ${Math.max(...gaps).toFixed(1)} ms`,
    );
    assert.equal(ingest.sessions, 7);
    assert.ok(
      switches.every((ms) => ms < 1000),
      switches.join(', '),
    );
    const depacketizer = new H264Depacketizer(); // throws on a sequence gap
    for (const p of recorder.video) depacketizer.push(p);

    // Two changes before the first took effect: both settle with the last one streaming.
    const a = ingest.reconfigure({ videoBitRate: 700_000 });
    const b = ingest.reconfigure({ maxSize: 640, videoBitRate: 800_000 });
    await Promise.all([a, b]);
    await waitFor(
      'the 640 video',
      () => ingest.videoSize,
      (size) => size?.height === 640,
    );
    const last = serverStarts.at(-1)!;
    assert.deepEqual([last.maxSize, last.videoBitRate], [640, 800_000]);
    assert.deepEqual(recorder.errors, []);
    await ingest.close();
  });
});
