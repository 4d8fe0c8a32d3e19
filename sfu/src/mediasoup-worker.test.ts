// The mediasoup worker that scripts/mediasoup-worker.sh builds from Debian's libraries (and installs
// where mediasoup looks by default) starts, serves a router and a WebRTC server, and closes cleanly.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { waitFor } from '@cphone/proto/testing';
import { createWorker } from 'mediasoup';

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

test('the worker runs a router and a WebRTC server on loopback, and closing it cascades and ends its process', async (t) => {
  const worker = await createWorker({ logLevel: 'warn' });
  t.after(() => worker.close());
  let died: Error | undefined;
  worker.on('died', (error) => {
    died = error;
  });
  const router = await worker.createRouter({
    mediaCodecs: [{ kind: 'video', mimeType: 'video/VP8', clockRate: 90000 }],
  });
  const server = await worker.createWebRtcServer({
    listenInfos: [
      { protocol: 'udp', ip: '127.0.0.1', port: 0 },
      { protocol: 'tcp', ip: '127.0.0.1', port: 0 },
    ],
  });
  const transport = await router.createWebRtcTransport({ webRtcServer: server });

  const { udpSockets, tcpServers } = await server.dump();
  const udpPort = udpSockets[0]?.port ?? 0;
  const tcpPort = tcpServers[0]?.port ?? 0;
  assert.ok(udpPort > 0, 'the WebRTC server listens on a UDP port the worker chose');
  assert.ok(tcpPort > 0, 'and on a TCP port');
  assert.deepEqual(
    transport.iceCandidates.map(({ address, protocol, port }) => ({ address, protocol, port })),
    [
      { address: '127.0.0.1', protocol: 'udp', port: udpPort },
      { address: '127.0.0.1', protocol: 'tcp', port: tcpPort },
    ],
  );
  assert.ok(transport.dtlsParameters.fingerprints.some((f) => f.algorithm === 'sha-256'));
  assert.ok((await worker.getResourceUsage()).ru_maxrss > 0, 'the worker answers requests');
  assert.ok(processAlive(worker.pid));

  worker.close();
  assert.ok(router.closed && server.closed && transport.closed, 'closing the worker closes its children');
  await waitFor(
    'the worker process to exit',
    () => processAlive(worker.pid),
    (alive) => !alive,
  );
  assert.equal(died, undefined, 'a worker closed on purpose is not reported dead');
});
