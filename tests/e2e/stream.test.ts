// A phone's screen in a real browser, end to end: the real control plane issues a stream session
// through the public API, a real agent (sim runtime, virtual phones speaking ADB and scrcpy 3.3.3)
// serves it from its sfu over WSS, and Debian's Chromium plays it with mediasoup-client — frames
// decoded at the phone's size, sound received, touches landing at device coordinates, text in any
// script typed intact, the clipboard both ways, revocation and a stopped phone ending the session.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { Agent } from '@cphone/host-agent';
import { DeviceState, HostState, StreamRights } from '@cphone/proto';
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
});
