// A phone's room in the real sfu for bench/sfu.ts, and viewers' consumers added to it outside
// WebRTC: createSfu with the bench's feed, one viewer joined over the signaling socket (which opens
// the room, its router on the one worker and its video producer fed in-process over the
// DirectTransport, as in the agent), and the mediasoup objects found through mediasoup's observer.
// Each extra viewer is a PlainTransport with SRTP sending its video consumer to a UDP address.
import { randomBytes } from 'node:crypto';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { waitFor } from '@cphone/proto/testing';
import { createSfu, type FeedProvider } from '@cphone/sfu';
import { SignalClient, testTokens } from '@cphone/sfu/testing';
import type { types } from 'mediasoup';
import * as mediasoup from 'mediasoup';
import pino from 'pino';

/** The suite every WebRTC endpoint must offer (RFC 7714 GCM is optional), and the costlier one per packet. */
export const SRTP_SUITE: types.SrtpCryptoSuite = 'AES_CM_128_HMAC_SHA1_80';

export interface BenchRoom {
  readonly worker: types.Worker;
  readonly router: types.Router;
  readonly producer: types.Producer;
  /** A viewer over SRTP: a PlainTransport whose video consumer sends to 127.0.0.1:port. */
  addViewer(port: number): Promise<types.Consumer>;
  close(): Promise<void>;
}

export async function openBenchRoom(feeds: FeedProvider, deviceId = 'bench-phone'): Promise<BenchRoom> {
  let worker: types.Worker | undefined;
  let router: types.Router | undefined;
  let producer: types.Producer | undefined;
  const onWorker = (w: types.Worker) => {
    worker = w;
    w.observer.on('newrouter', (r) => {
      router = r;
      r.observer.on('newtransport', (t) =>
        t.observer.on('newproducer', (p) => {
          if (p.kind === 'video') producer = p;
        }),
      );
    });
  };
  mediasoup.observer.on('newworker', onWorker);
  const tokens = testTokens();
  const sfu = await createSfu({
    feeds,
    verifyToken: tokens.verify,
    workers: 1,
    rtcPort: 0,
    graceMs: 0,
    logger: pino({ level: 'silent' }),
  });
  mediasoup.observer.off('newworker', onWorker);
  const server = createServer((_req, res) => res.writeHead(404).end());
  server.on('upgrade', (req, socket, head) => sfu.handleUpgrade(req, socket, head));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  const viewer = await SignalClient.connect(`ws://127.0.0.1:${port}/signal`);
  await viewer.request('join', { token: await tokens.sign({ deviceId }) });
  await waitFor(
    'the room and its video producer',
    async () => producer,
    (p) => p !== undefined,
  );
  const transports: types.PlainTransport[] = [];
  return {
    worker: worker!,
    router: router!,
    producer: producer!,
    async addViewer(sinkPort) {
      const transport = await router!.createPlainTransport({
        // The same socket buffers as the sfu's WebRtcServer gives its shared UDP socket.
        listenInfo: { protocol: 'udp', ip: '127.0.0.1', sendBufferSize: 4 * 1024 * 1024 },
        rtcpMux: true,
        comedia: false,
        enableSrtp: true,
        srtpCryptoSuite: SRTP_SUITE,
      });
      transports.push(transport);
      await transport.connect({
        ip: '127.0.0.1',
        port: sinkPort,
        srtpParameters: { cryptoSuite: SRTP_SUITE, keyBase64: randomBytes(30).toString('base64') },
      });
      return transport.consume({ producerId: producer!.id, rtpCapabilities: router!.rtpCapabilities });
    },
    async close() {
      for (const t of transports) t.close();
      viewer.close();
      await sfu.close();
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}
