// The ingest of bench/sfu.ts's ingest_cpu_per_phone_pct, in a process of its own so that only its
// CPU is counted: ScreenIngest reads one phone's scrcpy video and audio over ADB (the phone, a
// virtual phone, runs in another process) and packetizes them into RTP for a sink that counts.
// Also profiles itself, to tell ADB's share from scrcpy parsing and packetizing.
import { createHash } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { Session } from 'node:inspector/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { DeviceAdb, FileCredentialStore, ScreenIngest } from '@cphone/host-agent';
import pino from 'pino';
import type { CpuProfile } from './_agent-overhead-profile.js';

export type IngestRequest =
  | { op: 'cpu'; seconds: number }
  | { op: 'start' }
  | { op: 'profile'; seconds: number }
  | { op: 'close' };
export type IngestReply =
  | { op: 'ready' }
  | {
      op: 'cpu';
      pct: number;
      frames: number;
      videoPackets: number;
      audioPackets: number;
      videoBytes: number;
      seconds: number;
    }
  | { op: 'start' }
  | { op: 'profile'; places: [string, number][]; totalMs: number }
  | { op: 'close' };

const port = Number(process.env.SFU_PHONE_PORT);
const dir = await mkdtemp(join(tmpdir(), 'cphone-bench-ingest-'));
const jar = Buffer.from('stand-in server (the virtual phone runs no jar)');
await writeFile(join(dir, 'server'), jar);
const device = new DeviceAdb({
  endpoint: { host: '127.0.0.1', port },
  credentialStore: await FileCredentialStore.open({ dataDir: dir }),
});
let ingest: ScreenIngest | undefined;
let frames = 0;
let videoPackets = 0;
let audioPackets = 0;
let videoBytes = 0;

async function cpu(seconds: number): Promise<IngestReply> {
  frames = videoPackets = audioPackets = videoBytes = 0;
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  await sleep(seconds * 1000);
  const used = process.cpuUsage(c0);
  const wall = (performance.now() - t0) / 1000;
  return {
    op: 'cpu',
    pct: ((used.user + used.system) / 1e6 / wall) * 100,
    frames,
    videoPackets,
    audioPackets,
    videoBytes,
    seconds: wall,
  };
}

/** Where a frame's code lives: a package, a folder of this repo, Node's internals or a pseudo frame. */
function placeOf(url: string, functionName: string): string {
  if (url === '') return functionName.startsWith('(') ? functionName : '(native)';
  if (url.startsWith('node:')) return 'node internals';
  const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (pkg) return pkg[1]!;
  return /\/(host-agent\/src\/[^/]+)/.exec(url)?.[1] ?? url;
}

async function profile(seconds: number): Promise<IngestReply> {
  const session = new Session();
  session.connect();
  await session.post('Profiler.enable');
  await session.post('Profiler.setSamplingInterval', { interval: 200 });
  await session.post('Profiler.start');
  await sleep(seconds * 1000);
  const { profile } = (await session.post('Profiler.stop')) as unknown as { profile: CpuProfile };
  session.disconnect();
  const place = new Map<number, string>();
  for (const node of profile.nodes)
    place.set(node.id, placeOf(node.callFrame.url, node.callFrame.functionName));
  const byPlace = new Map<string, number>();
  let totalMs = 0;
  profile.samples?.forEach((id, i) => {
    const name = place.get(id) ?? '?';
    const dt = (profile.timeDeltas?.[i] ?? 0) / 1000;
    if (name !== '(idle)') totalMs += dt;
    byPlace.set(name, (byPlace.get(name) ?? 0) + dt);
  });
  byPlace.delete('(idle)');
  return { op: 'profile', places: [...byPlace].sort((a, b) => b[1] - a[1]), totalMs };
}

process.on('message', async (m: IngestRequest & { id: number }) => {
  let reply: IngestReply;
  if (m.op === 'cpu') reply = await cpu(m.seconds);
  else if (m.op === 'profile') reply = await profile(m.seconds);
  else if (m.op === 'start') {
    ingest = new ScreenIngest({
      device,
      server: { path: join(dir, 'server'), sha256: createHash('sha256').update(jar).digest('hex') },
      sink: {
        sendVideoRtp: (p) => {
          videoPackets++;
          videoBytes += p.byteLength;
        },
        sendAudioRtp: () => {
          audioPackets++;
        },
      },
      video: { ssrc: 1, payloadType: 102 },
      audio: { ssrc: 2, payloadType: 111 },
      capture: { maxSize: 1280, maxFps: 30, videoBitRate: 2_000_000 },
      onFrame: () => {
        frames++;
      },
      logger: pino({ level: 'silent' }),
    });
    while (frames < 60) await sleep(100);
    reply = { op: 'start' };
  } else {
    await ingest?.close();
    await device.close();
    await rm(dir, { recursive: true, force: true });
    reply = { op: 'close' };
  }
  process.send?.({ ...reply, id: m.id }, () => {
    if (m.op === 'close') process.exit(0);
  });
});
process.send?.({ op: 'ready', id: -1 });
