// streams_per_core for bench/sfu.ts: how many viewers of one 2 Mbit/s 720p30 phone one mediasoup
// worker forwards over SRTP with under 0.1 % loss. Viewers are added in steps; each step is
// measured over a window bracketed by pauses of the feed, so every counter is exact: what the
// producer received, what the consumers sent (mediasoup's stats), what the sink's sockets got, and
// what the kernel dropped for full receive buffers (/proc/net/snmp). The baseline is a raw UDP
// forwarder (no SRTP, no RTP rewriting) feeding the same sink at the same rates.
import { createSocket } from 'node:dgram';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Feed, FeedWiring } from '@cphone/sfu';
import { RtpPacketizer } from '@cphone/sfu/testing';
import type { types } from 'mediasoup';
import { Child } from './_child.js';
import type { ForwarderReply, ForwarderRequest } from './_sfu-forwarder.js';
import { cpuMeter, FramePlayer, paddedRecording, udpCounters } from './_sfu-media.js';
import { openBenchRoom, SRTP_SUITE } from './_sfu-room.js';
import type { SinkReply, SinkRequest } from './_sfu-sink.js';

export interface Step {
  viewers: number;
  /** Packets in per viewer over the window (the producer's, or the forwarder's input). */
  packetsIn: number;
  /**
   * Share of viewer packets lost on the way, the kernel's receive-buffer drops at the sink aside:
   * (expected - received by the sink - kernel drops) / expected. The sfu's loss.
   */
  forwarderLoss: number;
  /** Share by which the forwarder's own count of packets sent falls short (mediasoup's consumer stats). */
  countedShort: number;
  /** Share of viewer packets that did not reach the sink's sockets (any cause). */
  deliveryLoss: number;
  /** Datagrams the kernel dropped for full receive buffers (all sockets of the machine). */
  kernelDrops: number;
  /** Sent but neither received nor dropped by the kernel's receive buffers. */
  otherDrops: number;
  forwarderCpuPct: number;
  sinkCpuPct: number;
  mbps: number;
}

export interface ForwardingResult {
  mediasoup: Step[];
  baseline: Step[];
  streamsPerCore: number;
  /** Why the steps stopped. */
  stoppedBy: string;
  packetsPerFrame: number;
}

const LOSS_LIMIT = 0.001;
const CPU_SATURATED_PCT = 95;

type Sink = Child<SinkRequest, SinkReply>;
type Counts = Extract<SinkReply, { op: 'counts' }>;

const line = (name: string, s: Step) =>
  `  ${name} ${String(s.viewers).padStart(5)} viewers: ${s.mbps.toFixed(0).padStart(5)} Mbit/s out, forwarder CPU ${s.forwarderCpuPct.toFixed(0).padStart(3)} %, loss ${(s.forwarderLoss * 100).toFixed(3)} % (delivered ${(s.deliveryLoss * 100).toFixed(3)} % short, kernel rcvbuf drops ${s.kernelDrops}; the forwarder's own sent count ${(s.countedShort * 100).toFixed(3)} % short), sink CPU ${s.sinkCpuPct.toFixed(0)} %`;

/** One measuring window: pause, snapshot, play `seconds`, pause, drain, snapshot. */
async function window(
  player: FramePlayer,
  seconds: number,
  viewers: number,
  sink: Sink,
  forwarderPid: number,
  sentAndIn: () => Promise<{ sent: number; packetsIn: number }>,
): Promise<Step> {
  player.paused = true;
  await sleep(400);
  const a = {
    ...(await sentAndIn()),
    sink: await sink.ask<Counts>({ op: 'counts' }),
    udp: await udpCounters(),
  };
  const meter = await cpuMeter([forwarderPid, sink.process.pid ?? 0]);
  const t0 = performance.now();
  player.paused = false;
  await sleep(seconds * 1000);
  player.paused = true;
  const [forwarderCpuPct = 0, sinkCpuPct = 0] = await meter();
  const wall = (performance.now() - t0) / 1000;
  // A worker behind (a busy machine) still has packets queued: count once every counter stands still.
  const read = async () => ({
    ...(await sentAndIn()),
    sink: await sink.ask<Counts>({ op: 'counts' }),
    udp: await udpCounters(),
  });
  let b = await read();
  for (let tries = 0; tries < 20; tries++) {
    await sleep(300);
    const again = await read();
    const still = again.sent === b.sent && again.packetsIn === b.packetsIn && again.sink.rtp === b.sink.rtp;
    b = again;
    if (still) break;
  }
  const packetsIn = b.packetsIn - a.packetsIn;
  const expected = packetsIn * viewers;
  const sent = b.sent - a.sent;
  const received = b.sink.rtp - a.sink.rtp;
  const kernelDrops = b.udp.rcvbufErrors - a.udp.rcvbufErrors;
  return {
    viewers,
    packetsIn,
    forwarderLoss: expected > 0 ? Math.max(0, expected - received - kernelDrops) / expected : 0,
    countedShort: expected > 0 ? Math.max(0, expected - sent) / expected : 0,
    deliveryLoss: expected > 0 ? Math.max(0, expected - received) / expected : 0,
    kernelDrops,
    otherDrops: Math.max(0, sent - received - kernelDrops),
    forwarderCpuPct,
    sinkCpuPct,
    mbps: ((b.sink.bytes - a.sink.bytes) * 8) / wall / 1e6,
  };
}

export async function measureForwarding({
  steps,
  windowS,
}: {
  steps: number[];
  windowS: number;
}): Promise<ForwardingResult> {
  const recording = paddedRecording();
  const sink: Sink = Child.start('sink', './_sfu-sink.ts');
  const sinkReady = await sink.ready();
  if (sinkReady.op !== 'ready') throw new Error('the sink did not start');
  const ports = sinkReady.ports;

  // The sfu's room, fed in-process like the agent's ingest feeds it.
  let player: FramePlayer | undefined;
  let packetsFed = 0;
  const room = await openBenchRoom({
    open(_deviceId, wiring: FeedWiring): Feed {
      const rtp = new RtpPacketizer(wiring.video.ssrc, wiring.video.payloadType);
      player = new FramePlayer(recording, (unit, ts) => {
        for (const p of rtp.h264(unit, ts)) {
          wiring.sink.sendVideoRtp(p);
          packetsFed++;
        }
      });
      player.start();
      wiring.onVideoSize({ width: recording.width, height: recording.height });
      return {
        requestKeyframe: () => {},
        input: async () => {},
        videoSize: () => ({ width: recording.width, height: recording.height }),
        close: () => player?.stop(),
      };
    },
  });
  const consumers: types.Consumer[] = [];
  const consumerSent = async () => {
    let sent = 0;
    for (let i = 0; i < consumers.length; i += 200) {
      const stats = await Promise.all(consumers.slice(i, i + 200).map((c) => c.getStats()));
      for (const list of stats) for (const s of list) if (s.type === 'outbound-rtp') sent += s.packetCount;
    }
    const produced = (await room.producer.getStats()).reduce((n, s) => n + s.packetCount, 0);
    return { sent, packetsIn: produced };
  };
  console.log(
    `forwarding: one mediasoup worker (pid ${room.worker.pid}); each viewer a PlainTransport with SRTP (${SRTP_SUITE}) sending its video consumer to one of ${ports.length} UDP sockets of a Node sink in another process; ${windowS} s per step`,
  );
  const mediasoupSteps: Step[] = [];
  let streamsPerCore = 0;
  let stoppedBy = `the last step (${steps.at(-1)} viewers) passed`;
  for (const viewers of steps) {
    while (consumers.length < viewers) {
      const batch = Array.from({ length: Math.min(25, viewers - consumers.length) }, (_, i) =>
        room.addViewer(ports[(consumers.length + i) % ports.length]!),
      );
      consumers.push(...(await Promise.all(batch)));
    }
    await sleep(1500);
    const step = await window(player!, windowS, viewers, sink, room.worker.pid, consumerSent);
    mediasoupSteps.push(step);
    console.log(line('mediasoup', step));
    if (step.forwarderLoss >= LOSS_LIMIT) {
      stoppedBy = `loss in the sfu ${(step.forwarderLoss * 100).toFixed(3)} % at ${viewers} viewers`;
      break;
    }
    if (step.forwarderCpuPct >= CPU_SATURATED_PCT) {
      stoppedBy = `the worker's CPU at ${step.forwarderCpuPct.toFixed(0)} % at ${viewers} viewers`;
      break;
    }
    streamsPerCore = viewers;
  }
  const perFrame = packetsFed / Math.max(1, player!.frames);
  await room.close();

  // The baseline: the same packets through a raw forwarder, at the same steps.
  const forwarder = Child.start<ForwarderRequest, ForwarderReply>('forwarder', './_sfu-forwarder.ts');
  const fwdReady = await forwarder.ready();
  if (fwdReady.op !== 'ready') throw new Error('the forwarder did not start');
  const out = createSocket('udp4');
  const rtp = new RtpPacketizer(0x1234, 102);
  const raw = new FramePlayer(recording, (unit, ts) => {
    for (const p of rtp.h264(unit, ts)) out.send(p, fwdReady.port, '127.0.0.1');
  });
  raw.start();
  const forwarderCounts = async () => {
    const c = await forwarder.ask<Extract<ForwarderReply, { op: 'counts' }>>({ op: 'counts' });
    return { sent: c.sent, packetsIn: c.received };
  };
  const baseline: Step[] = [];
  for (const step of mediasoupSteps) {
    await forwarder.ask({ op: 'fanout', count: step.viewers, ports });
    const b = await window(raw, windowS, step.viewers, sink, forwarder.process.pid ?? 0, forwarderCounts);
    baseline.push(b);
    console.log(line('raw UDP ', b));
  }
  raw.stop();
  out.close();
  await forwarder.stop();
  await sink.ask({ op: 'close' });
  await sink.exited;
  return { mediasoup: mediasoupSteps, baseline, streamsPerCore, stoppedBy, packetsPerFrame: perFrame };
}
