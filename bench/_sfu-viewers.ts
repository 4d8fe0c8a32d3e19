// The figures bench/sfu.ts takes through the public API, on the real control plane and agent
// (_sfu-stack.ts): glass-to-glass in Chromium, and revocations reaching viewers' sockets.
import { setTimeout as sleep } from 'node:timers/promises';
import { StreamRights } from '@cphone/proto';
import { waitFor } from '@cphone/proto/testing';
import type { Feed, FeedProvider, FeedWiring } from '@cphone/sfu';
import { type CloseInfo, launchChromium, SignalClient, ViewerPage } from '@cphone/sfu/testing';
import { WebSocketServer } from 'ws';
import { epochNow, rtpHeader } from './_sfu-media.js';
import type { Stack } from './_sfu-stack.js';

export interface GlassResult {
  /** Presented (rVFC presentationTime) minus the frame's capture time, ms. */
  glass: number[];
  /** Presented minus the frame's last packet handed to the sfu, ms. */
  fromSfu: number[];
  /** Presented minus received (rVFC receiveTime), ms: jitter buffer, decode, render. */
  inBrowser: number[];
  frames: number;
}

/**
 * Capture times as the ingest defines them (its FrameInfo.captureTimeMs: the phone's PTS put on
 * this host's clock by the smallest transit seen), recomputed from the RTP timestamps the agent's
 * feed hands the sfu, since the ingest's PTS become RTP timestamps at 90 kHz. Hooked into the
 * agent's feed provider: every frame's last packet is stamped on its way into the sfu.
 */
function hookFeeds(feeds: FeedProvider): Map<number, number> {
  const handed = new Map<number, number>();
  const open = feeds.open.bind(feeds);
  (feeds as { open: FeedProvider['open'] }).open = (
    deviceId: string,
    wiring: FeedWiring,
  ): Feed | Promise<Feed> =>
    open(deviceId, {
      ...wiring,
      sink: {
        sendVideoRtp: (packet) => {
          wiring.sink.sendVideoRtp(packet);
          const h = rtpHeader(Buffer.from(packet.buffer, packet.byteOffset, packet.byteLength));
          if (h?.marker) handed.set(h.timestamp, epochNow());
        },
        sendAudioRtp: (packet) => wiring.sink.sendAudioRtp(packet),
      },
    });
  return handed;
}

export async function measureGlassToGlass(
  stack: Stack,
  deviceId: string,
  seconds: number,
): Promise<GlassResult> {
  const handed = hookFeeds(stack.agent.streaming!.feeds);
  const browser = await launchChromium();
  try {
    const context = await browser.newContext({ ignoreHTTPSErrors: true });
    const page = await ViewerPage.open(context);
    const { streamSession } = await stack.devices.createStreamSession({
      deviceId,
      rights: StreamRights.VIEW,
    });
    await page.start({ url: streamSession!.sfuUrl, token: streamSession!.token });
    await waitFor(
      'frames decoded',
      () => page.state(),
      (s) => s.frames >= 30,
      { timeoutMs: 30_000 },
    );
    // A string, so that the bundler's helpers (tsx names functions) stay out of the page.
    await page.page.evaluate(`(() => {
      const video = document.querySelector('video');
      const samples = [];
      globalThis.g2g = samples;
      const origin = performance.timeOrigin;
      const onFrame = (_now, m) => {
        samples.push([m.rtpTimestamp ?? -1, origin + m.presentationTime, m.receiveTime ? origin + m.receiveTime : -1]);
        video.requestVideoFrameCallback(onFrame);
      };
      video.requestVideoFrameCallback(onFrame);
    })()`);
    await sleep(seconds * 1000);
    const samples = (await page.page.evaluate('globalThis.g2g')) as number[][];
    await page.close();
    // The linear map RTP timestamp -> capture time: 90 kHz, offset by the smallest transit.
    const entries = [...handed];
    const first = entries[0]?.[0] ?? 0;
    const unwrap = (ts: number) => {
      const d = (ts - first) >>> 0;
      return d > 2 ** 31 ? d - 2 ** 32 : d;
    };
    const offset = Math.min(...entries.map(([ts, at]) => at - unwrap(ts) / 90));
    const result: GlassResult = { glass: [], fromSfu: [], inBrowser: [], frames: samples.length };
    for (const [ts = -1, presented = 0, received = -1] of samples) {
      const at = handed.get(ts);
      if (at === undefined) continue;
      result.glass.push(presented - (unwrap(ts) / 90 + offset));
      result.fromSfu.push(presented - at);
      if (received > 0) result.inBrowser.push(presented - received);
    }
    return result;
  } finally {
    await browser.close();
  }
}

export interface RevokeResult {
  /** RevokeStreamSession called -> the viewer's socket closed, ms. */
  revoke: number[];
  reasons: string[];
  /** Baselines: a bare WebSocket close round trip on loopback; a public API call (GetDevice). */
  bareClose: number[];
  apiCall: number[];
  /** StopDevice called -> each viewer's socket closed, ms. */
  stop: number[];
  stopReasons: string[];
}

async function viewers(
  stack: Stack,
  deviceId: string,
  n: number,
): Promise<{ client: SignalClient; sessionId: string }[]> {
  const out = [];
  for (let i = 0; i < n; i++) {
    const { streamSession } = await stack.devices.createStreamSession({
      deviceId,
      rights: StreamRights.VIEW,
    });
    const client = await SignalClient.connect(streamSession!.sfuUrl, { rejectUnauthorized: false });
    await client.request('join', { token: streamSession!.token });
    out.push({ client, sessionId: streamSession!.sessionId });
  }
  return out;
}

const closedAt = (client: SignalClient): Promise<{ at: number; close: CloseInfo }> =>
  client.closed.then((close) => ({ at: performance.now(), close }));

export async function measureRevoke(
  stack: Stack,
  deviceId: string,
  n: number,
  stopViewers: number,
): Promise<RevokeResult> {
  const result: RevokeResult = {
    revoke: [],
    reasons: [],
    bareClose: [],
    apiCall: [],
    stop: [],
    stopReasons: [],
  };
  const live = await viewers(stack, deviceId, n);
  for (const { client, sessionId } of live) {
    const closed = closedAt(client);
    const t0 = performance.now();
    await stack.devices.revokeStreamSession({ sessionId, reason: 'bench revocation' });
    const { at, close } = await closed;
    result.revoke.push(at - t0);
    result.reasons.push(`${close.code} ${close.reason}`);
  }
  for (let i = 0; i < n; i++) {
    const t0 = performance.now();
    await stack.devices.getDevice({ deviceId });
    result.apiCall.push(performance.now() - t0);
  }
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0 });
  wss.on('connection', (ws) => ws.on('message', () => ws.close(4410, 'REVOKED: bench revocation')));
  await new Promise((resolve) => wss.once('listening', resolve));
  const url = `ws://127.0.0.1:${(wss.address() as { port: number }).port}`;
  for (let i = 0; i < n; i++) {
    const client = await SignalClient.connect(url);
    const closed = closedAt(client);
    const t0 = performance.now();
    client.sendRaw('close');
    result.bareClose.push((await closed).at - t0);
  }
  await new Promise((resolve) => wss.close(resolve));
  const watching = await viewers(stack, deviceId, stopViewers);
  const closes = watching.map(({ client }) => closedAt(client));
  const t0 = performance.now();
  await stack.devices.stopDevice({ deviceId });
  for (const { at, close } of await Promise.all(closes)) {
    result.stop.push(at - t0);
    result.stopReasons.push(`${close.code} ${close.reason}`);
  }
  return result;
}
