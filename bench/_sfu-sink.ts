// The viewers' side of bench/sfu.ts's forwarding test, in a process of its own (the other core):
// UDP sockets that count the RTP packets and bytes reaching them, RTCP aside. SRTP leaves the RTP
// header in clear, so nothing is decrypted: the count is what a receiver's socket delivered.
import { createSocket, type Socket } from 'node:dgram';

export type SinkRequest = { op: 'counts' } | { op: 'close' };
export type SinkReply =
  | { op: 'ready'; ports: number[] }
  | { op: 'counts'; rtp: number; rtcp: number; bytes: number; cpuMicros: number };

const SOCKETS = Number(process.env.SFU_SINK_SOCKETS ?? 8);
let rtp = 0;
let rtcp = 0;
let bytes = 0;
const sockets: Socket[] = [];
for (let i = 0; i < SOCKETS; i++) {
  const socket = createSocket({ type: 'udp4', recvBufferSize: 4 * 2 ** 20 });
  socket.on('message', (packet) => {
    const pt = packet[1]! & 0x7f;
    if (pt >= 64 && pt <= 95) rtcp++;
    else {
      rtp++;
      bytes += packet.byteLength;
    }
  });
  await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve));
  sockets.push(socket);
}

process.on('message', (m: SinkRequest & { id: number }) => {
  if (m.op === 'close') {
    for (const s of sockets) s.close();
    process.send?.({ op: 'counts', rtp, rtcp, bytes, cpuMicros: 0, id: m.id });
    process.exit(0);
  }
  const cpu = process.cpuUsage();
  process.send?.({ op: 'counts', rtp, rtcp, bytes, cpuMicros: cpu.user + cpu.system, id: m.id });
});
process.send?.({ op: 'ready', ports: sockets.map((s) => s.address().port), id: -1 });
