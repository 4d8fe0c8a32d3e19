// Measures ingest_cpu_per_phone_pct: the agent CPU to read one 720p30 phone's scrcpy streams
// (video and Opus audio over ADB) and packetize them into RTP, with the phone in another process
// so only the agent side is counted. Usage (from the repository root):
//   node --import tsx host-agent/scripts/measure-ingest-cpu.ts [--seconds 20] [--bitrate 2M]
// It records 720p recordings at the bitrate with make-h264-fixture.sh (needs ffmpeg) into a temp
// folder and has the virtual phone stream them. Prints the figures, then one JSON line.
import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { MemoryCredentialStore } from '../src/adb/credential-store.js';
import { DeviceAdb } from '../src/adb/device-adb.js';
import { ScreenIngest } from '../src/screen/screen-ingest.js';

const { values } = parseArgs({
  options: { seconds: { type: 'string', default: '20' }, bitrate: { type: 'string', default: '2M' } },
});
const seconds = Number(values.seconds);
const here = new URL('..', import.meta.url).pathname;
const dir = await mkdtemp(join(tmpdir(), 'cphone-ingest-cpu-'));
const made = spawnSync('bash', [join(here, 'scripts/make-h264-fixture.sh'), '720x1280', '1280x720'], {
  env: { ...process.env, BITRATE: values.bitrate, OUT_DIR: dir },
  stdio: ['ignore', 'ignore', 'inherit'],
});
if (made.status !== 0) throw new Error('make-h264-fixture.sh failed');
const port = 20_000 + Math.floor(Math.random() * 20_000);
const phone = spawn(
  process.execPath,
  [
    '--import',
    'tsx',
    join(here, 'src/virtual-phone/main.ts'),
    '--port',
    String(port),
    '--video-fixtures',
    dir,
  ],
  { stdio: ['ignore', 'pipe', 'inherit'] },
);
await new Promise<void>((resolve) =>
  phone.stdout.on('data', (d: Buffer) => d.includes('adb connect') && resolve()),
);

/** CPU of this process over `ms`, % of one core. */
async function cpuOver(
  ms: number,
): Promise<{ pct: number; userMs: number; systemMs: number; seconds: number }> {
  const cpu = process.cpuUsage();
  const started = performance.now();
  await new Promise((r) => setTimeout(r, ms));
  const used = process.cpuUsage(cpu);
  const seconds = (performance.now() - started) / 1000;
  return {
    pct: ((used.user + used.system) / 1e6 / seconds) * 100,
    userMs: used.user / 1e3,
    systemMs: used.system / 1e3,
    seconds,
  };
}

// What the process costs doing nothing (tsx's loader thread, timers): not ingest's.
const idle = await cpuOver(Math.min(seconds, 10) * 1000);
const jar = Buffer.from('stand-in server (the virtual phone runs no jar)');
await writeFile(join(dir, 'server'), jar);
const device = new DeviceAdb({
  endpoint: { host: '127.0.0.1', port },
  credentialStore: new MemoryCredentialStore(),
});
let frames = 0;
let videoPackets = 0;
let audioPackets = 0;
let bytes = 0;
const ingest = new ScreenIngest({
  device,
  server: { path: join(dir, 'server'), sha256: createHash('sha256').update(jar).digest('hex') },
  sink: {
    sendVideoRtp: (p) => {
      videoPackets++;
      bytes += p.byteLength;
    },
    sendAudioRtp: () => {
      audioPackets++;
    },
  },
  video: { ssrc: 1, payloadType: 102 },
  audio: { ssrc: 2, payloadType: 111 },
  capture: { maxSize: 1280, maxFps: 30 },
  onFrame: () => {
    frames++;
  },
});
while (frames < 60) await new Promise((r) => setTimeout(r, 100));
frames = videoPackets = audioPackets = bytes = 0;
const busy = await cpuOver(seconds * 1000);
const elapsed = busy.seconds;
await ingest.close();
await device.close();
phone.kill('SIGTERM');
await rm(dir, { recursive: true, force: true });

const pct = Math.max(0, busy.pct - idle.pct);
console.log(
  `streamed ${elapsed.toFixed(1)} s: ${(frames / elapsed).toFixed(1)} fps, ${((bytes * 8) / elapsed / 1e6).toFixed(2)} Mbit/s of video RTP`,
);
console.log(
  `${(videoPackets / elapsed).toFixed(0)} video + ${(audioPackets / elapsed).toFixed(0)} audio RTP packets/s`,
);
console.log(
  `process CPU while streaming: ${busy.pct.toFixed(2)} % of one core (user ${busy.userMs.toFixed(0)} ms, system ${busy.systemMs.toFixed(0)} ms); idle before: ${idle.pct.toFixed(2)} %`,
);
console.log(`ingest CPU per phone (streaming minus idle): ${pct.toFixed(2)} % of one core`);
console.log(JSON.stringify({ ingest_cpu_per_phone_pct: Number(pct.toFixed(2)) }));
