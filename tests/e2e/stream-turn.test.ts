// A phone's screen through TURN: the control plane hands out short-lived credentials in coturn's
// shared-secret scheme, and Chromium, allowed relay candidates only, reaches the agent's sfu through
// Debian's coturn with them; a tampered credential gets no relay and so no connection.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { Agent } from '@cphone/host-agent';
import { DeviceState, HostState, StreamRights } from '@cphone/proto';
import { waitFor } from '@cphone/proto/testing';
import { launchChromium, ViewerPage } from '@cphone/sfu/testing';
import type { Browser, BrowserContext } from 'playwright-core';
import { type Harness, startHarness } from './harness.js';
import { startTurnServer, type TurnServer } from './turn-server.js';

let turn: TurnServer;
let h: Harness;
let agent: Agent;
let browser: Browser;
let context: BrowserContext;
const pages: ViewerPage[] = [];

before(async () => {
  turn = await startTurnServer();
  h = await startHarness({ turn: { urls: [turn.url], secret: turn.secret } });
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
  await turn?.stop();
});

async function viewer(): Promise<ViewerPage> {
  const page = await ViewerPage.open(context);
  pages.push(page);
  return page;
}

/** A new VIEW session and its TURN server entry. */
async function session(deviceId: string) {
  const { streamSession: s } = await h.devices.createStreamSession({ deviceId, rights: StreamRights.VIEW });
  assert.ok(s);
  const relay = s.iceServers.find((i) => i.urls.some((u) => u.startsWith('turn:')));
  assert.ok(relay, 'the session offers a TURN server');
  return { s, relay: { urls: [...relay.urls], username: relay.username, credential: relay.credential } };
}

describe('a phone in the browser through TURN only', () => {
  let deviceId: string;

  before(async () => {
    const phone = await h.createPhone('relayed');
    await h.waitForState(phone.deviceId, DeviceState.RUNNING);
    deviceId = phone.deviceId;
  });

  test('the session hands out coturn credentials; Chromium plays the stream over a relay candidate', async () => {
    const { s, relay } = await session(deviceId);
    assert.deepEqual(relay.urls, [turn.url]);
    const [expiry, name] = relay.username.split(':');
    assert.equal(name, s.sessionId);
    assert.ok(Number(expiry) > Date.now() / 1000, `the user name ${relay.username} expires in the future`);
    assert.ok(relay.credential.length > 0);

    const page = await viewer();
    await page.start({ url: s.sfuUrl, token: s.token, iceServers: [relay], iceTransportPolicy: 'relay' });
    const state = await waitFor(
      'frames decoded through the relay',
      () => page.state(),
      (v) => v.frames >= 10,
    );
    assert.equal(state.connectionState, 'connected');
    assert.deepEqual([state.width, state.height], [720, 1280]);
    const pair = await waitFor(
      'a selected candidate pair',
      () => page.selectedCandidates(),
      (p) => p !== undefined,
    );
    assert.equal(pair.local, 'relay');
    assert.equal(pair.localUrl, turn.url);
  });

  test('a tampered credential gets no relay: coturn answers 401, no candidate, no frame', async () => {
    const { s, relay } = await session(deviceId);
    const tampered = { ...relay, credential: Buffer.alloc(20, 7).toString('base64') };
    assert.notEqual(tampered.credential, relay.credential);
    const page = await viewer();
    // The join itself succeeds; only ICE can fail.
    await page.startQuietly({
      url: s.sfuUrl,
      token: s.token,
      iceServers: [tampered],
      iceTransportPolicy: 'relay',
    });
    // With relay candidates only and none granted, gathering completes empty: ICE never starts
    // checks, so the transport stays 'new' for good rather than turning 'failed'.
    const state = await waitFor(
      'gathering to end with the TURN server refusing the credential',
      () => page.state(),
      (v) => v.iceGatheringState === 'complete' && v.iceErrors.length > 0,
    );
    assert.ok(state.joined, 'the sfu accepted the join');
    assert.deepEqual(
      state.iceErrors.map((e) => e.code),
      state.iceErrors.map(() => 401),
    );
    assert.equal(await page.selectedCandidates(), undefined);
    assert.equal(state.frames, 0);
    assert.notEqual(state.connectionState, 'connected');
  });
});
