// npm run bench -- sfu [--max-viewers 800] [--step 100] [--window 4] [--ingest-window 20]
//   [--latency-window 20] [--glass-window 20] [--revocations 50]
// The sfu's figures on the path a viewer's stream takes, each beside a baseline from the same run:
//   streams_per_core     viewers of one 2 Mbit/s 720p30 phone one mediasoup worker forwards over
//                        SRTP with < 0.1 % loss (vs a raw UDP forwarder into the same sink)
//   ingest_cpu_per_phone_pct  ScreenIngest reading a virtual phone over ADB and packetizing
//   added_latency_p50/p99_ms  frame read off the scrcpy socket -> its last packet out of the sfu
//                        (vs a bare loopback UDP hop in the same process)
//   glass_to_glass_p50_ms     capture -> presented in Chromium, through the public API and the
//                        agent's WSS endpoint
//   revoke_p99_ms        RevokeStreamSession -> the viewer's socket closed with the reason
//                        (vs a bare WebSocket close round trip, and a public API call)
import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { arg } from './_args.js';
import { Child } from './_child.js';
import { measureForwarding } from './_sfu-forwarding.js';
import type { IngestReply, IngestRequest } from './_sfu-ingest.js';
import { measureAddedLatency } from './_sfu-latency.js';
import { cpuMeter, ms, percentile, writePaddedFixtures } from './_sfu-media.js';
import { startStack } from './_sfu-stack.js';
import { measureGlassToGlass, measureRevoke } from './_sfu-viewers.js';

const TARGETS = { streams: 400, ingestPct: 1, addedP99: 5, glassP50: 60, revokeP99: 1000 };

const began = performance.now();
const elapsed = () => `[${((performance.now() - began) / 1000).toFixed(0)} s]`;
const dist = (v: number[]) =>
  `p50 ${ms(percentile(v, 50))} ms, p95 ${ms(percentile(v, 95))} ms, p99 ${ms(percentile(v, 99))} ms, max ${ms(Math.max(...v))} ms (n ${v.length})`;

async function main(): Promise<void> {
  const maxViewers = arg('max-viewers', 800);
  const step = arg('step', 100);
  const windowS = arg('window', 4);
  const ingestS = arg('ingest-window', 20);
  const latencyS = arg('latency-window', 20);
  const glassS = arg('glass-window', 20);
  const revocations = arg('revocations', 50);
  console.log(
    `sfu: ${(await import('node:os')).cpus().length} cores, load average ${loadavg()
      .map((l) => l.toFixed(1))
      .join(' ')} at the start (other work on the machine competes for both cores)`,
  );
  const fixtures = await mkdtemp(join(tmpdir(), 'cphone-bench-sfu-'));
  await writePaddedFixtures(fixtures);

  // 1. streams_per_core
  const steps = Array.from({ length: Math.floor(maxViewers / step) }, (_, i) => (i + 1) * step);
  const fwd = await measureForwarding({ steps, windowS });
  const last = fwd.mediasoup.find((s) => s.viewers === fwd.streamsPerCore);
  console.log(
    `${elapsed()} streams_per_core: ${fwd.streamsPerCore} (stopped by ${fwd.stoppedBy}); ${fwd.packetsPerFrame.toFixed(1)} RTP packets a frame, ${(fwd.packetsPerFrame * 30).toFixed(0)} a second per viewer; worker CPU there ${last?.forwarderCpuPct.toFixed(0) ?? 'n/a'} %, so ${last ? ((last.viewers * 100) / Math.max(1, last.forwarderCpuPct)).toFixed(0) : 'n/a'} viewers per core by CPU; = ${(fwd.streamsPerCore / TARGETS.streams).toFixed(2)} x the ${TARGETS.streams} target`,
  );

  // 2. ingest_cpu_per_phone_pct: the phone in one process, the ingest in another.
  const phonePort = 20_000 + Math.floor(Math.random() * 20_000);
  const phone = spawn(
    process.execPath,
    [
      '--import',
      'tsx',
      'host-agent/src/virtual-phone/main.ts',
      '--port',
      String(phonePort),
      '--video-fixtures',
      fixtures,
    ],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  await new Promise<void>((resolve) =>
    phone.stdout.on('data', (d: Buffer) => d.includes('adb connect') && resolve()),
  );
  const ingest = Child.start<IngestRequest, IngestReply>('ingest', './_sfu-ingest.ts', {
    env: { SFU_PHONE_PORT: String(phonePort) },
  });
  await ingest.ready();
  type Cpu = Extract<IngestReply, { op: 'cpu' }>;
  const idle = await ingest.ask<Cpu>({ op: 'cpu', seconds: Math.min(10, ingestS) });
  await ingest.ask({ op: 'start' });
  const phoneCpu = await cpuMeter([phone.pid ?? 0]);
  const busy = await ingest.ask<Cpu>({ op: 'cpu', seconds: ingestS });
  const [phonePct = 0] = await phoneCpu();
  const profile = await ingest.ask<Extract<IngestReply, { op: 'profile' }>>({ op: 'profile', seconds: 10 });
  await ingest.ask({ op: 'close' });
  await ingest.exited;
  const ingestPct = Math.max(0, busy.pct - idle.pct);
  const share = (test: (place: string) => boolean) =>
    profile.places.filter(([p]) => test(p)).reduce((n, [, t]) => n + t, 0) / Math.max(1, profile.totalMs);
  const adbShare = share((p) => /@yume-chan\/(adb|stream-extra|struct)|host-agent\/src\/adb/.test(p));
  const screenShare = share((p) => /@yume-chan\/scrcpy|host-agent\/src\/screen/.test(p));
  console.log(
    `${elapsed()} ingest: ${(busy.frames / busy.seconds).toFixed(1)} fps, ${((busy.videoBytes * 8) / busy.seconds / 1e6).toFixed(2)} Mbit/s of video RTP, ${(busy.videoPackets / busy.seconds).toFixed(0)} video + ${(busy.audioPackets / busy.seconds).toFixed(0)} audio packets/s; process CPU ${busy.pct.toFixed(2)} % streaming, ${idle.pct.toFixed(2)} % idle before`,
  );
  console.log(
    `  ingest_cpu_per_phone_pct ${ingestPct.toFixed(2)} % of a core (= ${(ingestPct / TARGETS.ingestPct).toFixed(1)} x the ${TARGETS.ingestPct} % target); the virtual phone's own process ${phonePct.toFixed(2)} % (not counted)`,
  );
  console.log(
    `  profile of the ingest process (${(profile.totalMs / 1000).toFixed(2)} s busy in 10 s): ADB (@yume-chan/adb, its streams, host-agent/src/adb) ${(adbShare * 100).toFixed(0)} %, scrcpy parsing and RTP (@yume-chan/scrcpy, host-agent/src/screen) ${(screenShare * 100).toFixed(0)} %; top: ${profile.places
      .slice(0, 8)
      .map(([p, t]) => `${p} ${((t / Math.max(1, profile.totalMs)) * 100).toFixed(0)} %`)
      .join(', ')}`,
  );

  // 3. added latency, ingest and sfu in one process as in the agent.
  const lat = await measureAddedLatency({ phonePort, seconds: latencyS });
  phone.kill('SIGTERM');
  console.log(
    `${elapsed()} added latency, scrcpy socket read -> last packet out of the sfu (SRTP, received on loopback): ${dist(lat.added)}; ${lat.unmatched} unmatched`,
  );
  console.log(
    `  baseline, a bare UDP hop on loopback in the same process at the same moments: ${dist(lat.bare)}`,
  );

  // 4. and 5. through the public API on the real control plane and agent.
  const stack = await startStack({ videoFixturesDir: fixtures, maxViewers: revocations + 10 });
  const deviceId = await stack.runningPhone('bench-phone');
  const g = await measureGlassToGlass(stack, deviceId, glassS);
  console.log(
    `${elapsed()} glass-to-glass in Chromium (measured here: rVFC presentationTime - the frame's capture time by its RTP timestamp; the sfu's session stats have no glass-to-glass samples in this branch): ${dist(g.glass)}; ${g.frames} frames presented`,
  );
  console.log(
    `  of which the frame's last packet into the sfu -> presented: ${dist(g.fromSfu)}; received -> presented (jitter buffer, decode, render): ${dist(g.inBrowser)}`,
  );
  const r = await measureRevoke(stack, deviceId, revocations, 10);
  const reasons = [...new Set(r.reasons)].join('; ');
  console.log(
    `${elapsed()} revoke, RevokeStreamSession -> the viewer's socket closed: ${dist(r.revoke)}; closes: ${reasons}`,
  );
  console.log(
    `  baselines: a bare WebSocket close round trip on loopback ${dist(r.bareClose)}; a public API call (GetDevice) ${dist(r.apiCall)}`,
  );
  console.log(
    `  StopDevice -> each of 10 viewers' sockets closed: ${dist(r.stop)}; closes: ${[...new Set(r.stopReasons)].join('; ')}`,
  );
  await stack.close();
  await rm(fixtures, { recursive: true, force: true });

  const round = (v: number, d = 2) => Number(v.toFixed(d));
  const lastBase = fwd.baseline.at(-1);
  const lastStep = fwd.mediasoup.at(-1);
  console.log(
    JSON.stringify({
      bench: 'sfu',
      streams_per_core: fwd.streamsPerCore,
      ingest_cpu_per_phone_pct: round(ingestPct),
      added_latency_p50_ms: round(percentile(lat.added, 50)),
      added_latency_p99_ms: round(percentile(lat.added, 99)),
      glass_to_glass_p50_ms: round(percentile(g.glass, 50), 1),
      revoke_p99_ms: round(percentile(r.revoke, 99), 1),
      streams_stopped_by: fwd.stoppedBy,
      streams_worker_cpu_pct_at_max: round(last?.forwarderCpuPct ?? 0, 0),
      streams_sfu_loss_at_max_pct: round((last?.forwarderLoss ?? 0) * 100, 3),
      streams_sink_kernel_drops: fwd.mediasoup.map((s) => s.kernelDrops),
      streams_delivered_short_pct: fwd.mediasoup.map((s) => round(s.deliveryLoss * 100, 3)),
      streams_mediasoup_sent_count_short_pct: fwd.mediasoup.map((s) => round(s.countedShort * 100, 3)),
      streams_last_step_viewers: lastStep?.viewers ?? 0,
      streams_worker_cpu_pct_last_step: round(lastStep?.forwarderCpuPct ?? 0, 0),
      baseline_raw_udp_cpu_pct_last_step: round(lastBase?.forwarderCpuPct ?? 0, 0),
      baseline_raw_udp_loss_last_step_pct: round((lastBase?.deliveryLoss ?? 0) * 100, 3),
      ingest_adb_share_pct: round(adbShare * 100, 0),
      virtual_phone_cpu_pct: round(phonePct),
      baseline_bare_udp_hop_p99_ms: round(percentile(lat.bare, 99)),
      glass_to_glass_p95_ms: round(percentile(g.glass, 95), 1),
      glass_to_glass_source: 'bench: rVFC presentationTime - capture time by RTP timestamp',
      baseline_bare_ws_close_p99_ms: round(percentile(r.bareClose, 99), 1),
      baseline_api_call_p99_ms: round(percentile(r.apiCall, 99), 1),
      stop_device_close_p99_ms: round(percentile(r.stop, 99), 1),
    }),
  );
}

await main();
process.exit(0);
