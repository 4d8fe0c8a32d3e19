// added_latency for bench/sfu.ts: from a frame read off the scrcpy socket (FrameInfo.receivedTimeMs)
// to its last RTP packet leaving the sfu, in this process as in the agent: ScreenIngest reads a
// virtual phone (another process) over ADB and feeds the sfu's room; a PlainTransport consumer
// with SRTP sends the video to a UDP socket here, timestamped on receipt and matched by RTP
// timestamp on the marker packet. The baseline, per frame and on the same clock: a datagram sent
// to the same socket at the moment the ingest hands the frame over (a bare loopback UDP hop and
// this event loop's own delay).
import { createHash } from 'node:crypto';
import { createSocket } from 'node:dgram';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { DeviceAdb, FileCredentialStore, type ScreenIngest, startScreenIngest } from '@cphone/host-agent';
import pino from 'pino';
import { epochNow, rtpHeader } from './_sfu-media.js';
import { openBenchRoom } from './_sfu-room.js';

export interface LatencyResult {
  /** ms per frame: sfu path, and the bare hop baseline. */
  added: number[];
  bare: number[];
  frames: number;
  unmatched: number;
}

export async function measureAddedLatency({
  phonePort,
  seconds,
}: {
  phonePort: number;
  seconds: number;
}): Promise<LatencyResult> {
  const dir = await mkdtemp(join(tmpdir(), 'cphone-bench-latency-'));
  const jar = Buffer.from('stand-in server (the virtual phone runs no jar)');
  await writeFile(join(dir, 'server'), jar);
  const device = new DeviceAdb({
    endpoint: { host: '127.0.0.1', port: phonePort },
    credentialStore: await FileCredentialStore.open({ dataDir: dir }),
  });
  const read = new Map<number, number>();
  const bareSent = new Map<number, number>();
  const added: number[] = [];
  const bare: number[] = [];
  let measuring = false;
  let unmatched = 0;
  let frames = 0;

  const socket = createSocket({ type: 'udp4', recvBufferSize: 2 ** 20 });
  socket.on('message', (packet) => {
    const at = epochNow();
    if (packet.byteLength === 4) {
      const id = packet.readUInt32BE(0);
      const sent = bareSent.get(id);
      bareSent.delete(id);
      if (measuring && sent !== undefined) bare.push(at - sent);
      return;
    }
    const h = rtpHeader(packet);
    if (!h?.marker) return;
    const readAt = read.get(h.timestamp);
    read.delete(h.timestamp);
    if (!measuring) return;
    if (readAt === undefined) unmatched++;
    else added.push(at - readAt);
  });
  await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve));
  const port = socket.address().port;
  const bareOut = createSocket('udp4');
  let bareId = 0;

  let ingest: ScreenIngest | undefined;
  const room = await openBenchRoom({
    open(_deviceId, wiring) {
      ingest = startScreenIngest({
        device,
        server: { path: join(dir, 'server'), sha256: createHash('sha256').update(jar).digest('hex') },
        sink: wiring.sink,
        video: wiring.video,
        audio: wiring.audio,
        capture: { maxSize: 1280, maxFps: 30, videoBitRate: 2_000_000 },
        onVideoSize: (size) => wiring.onVideoSize(size),
        onClipboard: () => {},
        onFrame: (frame) => {
          frames++;
          read.set(frame.rtpTimestamp, frame.receivedTimeMs);
          const id = bareId++;
          bareSent.set(id, epochNow());
          const b = Buffer.alloc(4);
          b.writeUInt32BE(id);
          bareOut.send(b, port, '127.0.0.1');
        },
        logger: pino({ level: 'silent' }),
      });
      const i = ingest;
      return {
        requestKeyframe: () => i.requestKeyframe(),
        input: (m) => i.input(m),
        videoSize: () => i.videoSize,
        close: () => i.close(),
      };
    },
  });
  await room.addViewer(port);
  while (frames < 60) await sleep(100);
  await sleep(1000);
  measuring = true;
  await sleep(seconds * 1000);
  measuring = false;
  const result = { added, bare, frames, unmatched };
  await room.close();
  await device.close();
  socket.close();
  bareOut.close();
  await rm(dir, { recursive: true, force: true });
  return result;
}
