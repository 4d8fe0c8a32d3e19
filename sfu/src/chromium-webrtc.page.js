// Runs in Chromium, bundled by esbuild with mediasoup-client, for chromium-webrtc.test.ts. Plain
// JavaScript because the sfu's TypeScript has no DOM types. The test answers the transports' events
// through the functions it exposes on window: cphoneConnect(direction, dtlsParameters) and
// cphoneProduce(kind, rtpParameters) -> producer id.
import { Device } from 'mediasoup-client';

// mediasoup-client does not recognise HeadlessChrome's user agent; it is Chromium all the same.
const device = new Device({ handlerName: 'Chrome111' });
let consumer;

window.peer = {
  /** Loads the router's capabilities and sends a canvas's video; returns the device's capabilities. */
  async send({ routerRtpCapabilities, transport }) {
    await device.load({ routerRtpCapabilities });
    const send = device.createSendTransport(transport);
    send.on('connect', ({ dtlsParameters }, done, fail) => {
      window.cphoneConnect('send', dtlsParameters).then(done, fail);
    });
    send.on('produce', ({ kind, rtpParameters }, done, fail) => {
      window.cphoneProduce(kind, rtpParameters).then((id) => done({ id }), fail);
    });
    const canvas = document.createElement('canvas');
    canvas.width = 320;
    canvas.height = 240;
    const context = canvas.getContext('2d');
    let frame = 0;
    // A canvas stream only carries frames when the canvas changes.
    setInterval(() => {
      context.fillStyle = `hsl(${(frame++ * 7) % 360} 80% 50%)`;
      context.fillRect(0, 0, canvas.width, canvas.height);
    }, 40);
    const [track] = canvas.captureStream(25).getVideoTracks();
    await send.produce({ track });
    return device.rtpCapabilities;
  },

  /** Receives the consumer the test created on its receive transport. */
  async receive({ transport, consumer: parameters }) {
    const recv = device.createRecvTransport(transport);
    recv.on('connect', ({ dtlsParameters }, done, fail) => {
      window.cphoneConnect('recv', dtlsParameters).then(done, fail);
    });
    consumer = await recv.consume(parameters);
  },

  /** Bytes of RTP the browser has received (and decrypted) for that consumer. */
  async receivedBytes() {
    let bytes = 0;
    for (const report of (await consumer.getStats()).values()) {
      if (report.type === 'inbound-rtp') bytes += report.bytesReceived;
    }
    return bytes;
  },
};
