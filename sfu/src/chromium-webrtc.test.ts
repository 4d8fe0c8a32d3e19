// A real WebRTC peer against the mediasoup worker built from Debian's libraries: Debian's Chromium
// runs mediasoup-client in a page, sends a canvas's video through one WebRtcTransport and receives
// it back through another. This is what PlainTransport tests never exercise: the worker's DTLS
// against a browser's ClientHello (where an upstream BIO callback bug crashed the worker with
// Debian's OpenSSL) and SRTP both ways through the libsrtp 3 shim over Debian's libsrtp 2.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { waitFor } from '@cphone/proto/testing';
import { bundleForBrowser, launchChromium } from '@cphone/proto/testing/browser';
import { createWorker, type types } from 'mediasoup';
import type { Browser } from 'playwright-core';

/** What chromium-webrtc.page.js puts on the page's window. */
interface PeerPage {
  peer: {
    send(args: {
      routerRtpCapabilities: types.RtpCapabilities;
      transport: TransportParameters;
    }): Promise<types.RtpCapabilities>;
    receive(args: {
      transport: TransportParameters;
      consumer: { id: string; producerId: string; kind: types.MediaKind; rtpParameters: types.RtpParameters };
    }): Promise<void>;
    receivedBytes(): Promise<number>;
  };
}
type TransportParameters = Pick<
  types.WebRtcTransport,
  'id' | 'iceParameters' | 'iceCandidates' | 'dtlsParameters'
>;

function parameters(transport: types.WebRtcTransport): TransportParameters {
  const { id, iceParameters, iceCandidates, dtlsParameters } = transport;
  return { id, iceParameters, iceCandidates, dtlsParameters };
}

let browser: Browser;
let bundle: string;
before(async () => {
  [browser, bundle] = await Promise.all([
    launchChromium(),
    bundleForBrowser(fileURLToPath(new URL('./chromium-webrtc.page.js', import.meta.url))),
  ]);
});
after(() => browser.close());

test('Chromium connects ICE and DTLS to the worker and media flows both ways over SRTP', async (t) => {
  const worker = await createWorker({ logLevel: 'warn' });
  t.after(() => worker.close());
  // A worker that dies (as one without the DTLS fix does, with SIGSEGV at the browser's first
  // ClientHello) fails the waits below at once, with mediasoup's account of the exit.
  const died = new Promise<never>((_, reject) =>
    worker.once('died', (error) => reject(new Error(`the mediasoup worker died ${error.message}`))),
  );
  died.catch(() => {});
  const unlessWorkerDies = <T>(wait: Promise<T>) => Promise.race([wait, died]);
  const router = await worker.createRouter({
    mediaCodecs: [{ kind: 'video', mimeType: 'video/VP8', clockRate: 90000 }],
  });
  const listenInfos: types.TransportListenInfo[] = [{ protocol: 'udp', ip: '127.0.0.1', port: 0 }];
  const transports = {
    send: await router.createWebRtcTransport({ listenInfos }),
    recv: await router.createWebRtcTransport({ listenInfos }),
  };
  let producer: types.Producer | undefined;

  const context = await browser.newContext();
  t.after(() => context.close());
  const page = await context.newPage();
  await page.exposeFunction(
    'cphoneConnect',
    (direction: keyof typeof transports, dtlsParameters: types.DtlsParameters) =>
      transports[direction].connect({ dtlsParameters }),
  );
  await page.exposeFunction(
    'cphoneProduce',
    async (kind: types.MediaKind, rtpParameters: types.RtpParameters) => {
      producer = await transports.send.produce({ kind, rtpParameters });
      return producer.id;
    },
  );
  await page.addScriptTag({ content: bundle });

  const rtpCapabilities = await unlessWorkerDies(
    page.evaluate((args) => (globalThis as unknown as PeerPage).peer.send(args), {
      routerRtpCapabilities: router.rtpCapabilities,
      transport: parameters(transports.send),
    }),
  );
  await unlessWorkerDies(
    waitFor(
      'the send transport to connect DTLS',
      () => transports.send.dtlsState,
      (s) => s === 'connected',
    ),
  );
  assert.ok(producer, 'the browser produced on the send transport');
  await unlessWorkerDies(
    waitFor(
      'RTP from the browser, decrypted by the worker',
      async () => (await producer!.getStats()).reduce((sum, s) => sum + s.byteCount, 0),
      (bytes) => bytes > 0,
    ),
  );

  const consumer = await transports.recv.consume({ producerId: producer.id, rtpCapabilities });
  await page.evaluate((args) => (globalThis as unknown as PeerPage).peer.receive(args), {
    transport: parameters(transports.recv),
    consumer: {
      id: consumer.id,
      producerId: producer.id,
      kind: consumer.kind,
      rtpParameters: consumer.rtpParameters,
    },
  });
  await unlessWorkerDies(
    waitFor(
      'the receive transport to connect DTLS',
      () => transports.recv.dtlsState,
      (s) => s === 'connected',
    ),
  );
  await unlessWorkerDies(
    waitFor(
      'RTP from the worker, decrypted by the browser',
      () => page.evaluate(() => (globalThis as unknown as PeerPage).peer.receivedBytes()),
      (bytes) => bytes > 0,
    ),
  );

  assert.equal(worker.died, false, 'the worker survived both handshakes');
  assert.ok((await worker.getResourceUsage()).ru_maxrss > 0, 'the worker still answers');
});
