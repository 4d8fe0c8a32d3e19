// The baseline of bench/sfu.ts's forwarding test: the least an SFU could do, in a process of its
// own. Each RTP packet that reaches its input socket is sent again, unchanged and unencrypted, to
// `fanout` destinations (the sink's sockets in turn), from one socket, as fast as Node can.
import { createSocket } from 'node:dgram';

export type ForwarderRequest = { op: 'fanout'; count: number; ports: number[] } | { op: 'counts' };
export type ForwarderReply =
  | { op: 'ready'; port: number }
  | { op: 'fanout' }
  | { op: 'counts'; received: number; sent: number; errors: number };

let fanout = 0;
let ports: number[] = [];
let received = 0;
let sent = 0;
let errors = 0;
const out = createSocket({ type: 'udp4', sendBufferSize: 4 * 2 ** 20 });
await new Promise<void>((resolve) => out.bind(0, '127.0.0.1', resolve));
const input = createSocket({ type: 'udp4', recvBufferSize: 4 * 2 ** 20 });
const done = (error: Error | null) => {
  if (error) errors++;
};
input.on('message', (packet) => {
  received++;
  for (let i = 0; i < fanout; i++) {
    out.send(packet, ports[i % ports.length]!, '127.0.0.1', done);
    sent++;
  }
});
await new Promise<void>((resolve) => input.bind(0, '127.0.0.1', resolve));

process.on('message', (m: ForwarderRequest & { id: number }) => {
  if (m.op === 'fanout') {
    fanout = m.count;
    ports = m.ports;
    process.send?.({ op: 'fanout', id: m.id });
  } else process.send?.({ op: 'counts', received, sent, errors, id: m.id });
});
process.send?.({ op: 'ready', port: input.address().port, id: -1 });
process.once('SIGTERM', () => process.exit(0));
