// Adaptive quality end to end: the real control plane issues stream sessions, a real agent serves
// them (sim runtime, virtual phones speaking ADB and scrcpy 3.3.3), Debian's Chromium plays them.
// What the phone's scrcpy server is started with is read from the virtual phone's adbd log, so
// these tests see the settings the phone was given. A narrow link is mediasoup's own transport
// limit on the viewer (setMaxOutgoingBitrate): its bandwidth estimate stays under it, as under a
// slow link, while the media itself passes unpaced.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { type Agent, createSimRuntime, type SimRuntime, startVirtualPhone } from '@cphone/host-agent';
import { recordScrcpyServerStarts, type ScrcpyServerStart } from '@cphone/host-agent/testing';
import { DeviceState, HostState, StreamRights } from '@cphone/proto';
import { waitFor } from '@cphone/proto/testing';
import { launchChromium, ViewerPage } from '@cphone/sfu/testing';
import type { Browser, BrowserContext } from 'playwright-core';
import { type Harness, startHarness } from './harness.js';

const servers = recordScrcpyServerStarts();
let h: Harness;
let runtime: SimRuntime;
let agent: Agent;
let browser: Browser;
let context: BrowserContext;

before(async () => {
  h = await startHarness();
  runtime = await createSimRuntime({
    dataDir: join(h.agentDataDir, 'sim'),
    scope: `e2e-${h.hostId}`,
    launch: (o) =>
      startVirtualPhone({
        host: o.host,
        port: o.port,
        serial: o.serial,
        bootDelayMs: o.bootDelayMs,
        screen: { width: o.screen.width, height: o.screen.height, dpi: o.screen.dpi },
        ...(o.dataDir !== undefined ? { dataDir: o.dataDir } : {}),
        logger: servers.logger,
      }),
  });
  agent = await h.startAgent({ deps: { runtime } });
  await h.waitForHost(HostState.READY, true);
  browser = await launchChromium();
  context = await browser.newContext({ ignoreHTTPSErrors: true });
});

after(async () => {
  await browser?.close();
  await agent?.close();
  await runtime?.close();
  await h?.close();
});

async function watch(name: string, quality?: string) {
  const phone = await h.createPhone(name);
  await h.waitForState(phone.deviceId, DeviceState.RUNNING);
  const { streamSession } = await h.devices.createStreamSession({
    deviceId: phone.deviceId,
    rights: StreamRights.CONTROL,
  });
  assert.ok(streamSession);
  const page = await ViewerPage.open(context);
  const joined = await page.start({
    url: streamSession.sfuUrl,
    token: streamSession.token,
    ...(quality ? { quality } : {}),
  });
  return { deviceId: phone.deviceId, sessionId: joined.sessionId as string, page };
}

const settings = (s: ScrcpyServerStart | undefined) => s && [s.maxSize, s.maxFps, s.videoBitRate];

test('a viewer joining with quality 480p makes the phone capture at 848', async () => {
  const { deviceId, page } = await watch('preset-480p', '480p');
  const last = await waitFor(
    'a scrcpy server started at max size 848',
    () => servers.of(deviceId).at(-1),
    (s) => s?.maxSize === 848,
  );
  // The 480p ladder's top rung: 30 fps, up to 1.2 Mbit/s.
  assert.deepEqual(settings(last), [848, 30, 1_200_000]);
  // The virtual phone has no 480x848 recording: it sends the largest that fits, as scrcpy
  // downsizes when the encoder refuses a size.
  await waitFor(
    'frames decoded at most 848 high',
    () => page.state(),
    (s) => s.frames > 10 && s.height > 0 && s.height <= 848,
  );
  await page.close();
});

test('a narrow link steps the phone down; once it widens, the phone steps back up', async (t) => {
  const { deviceId, sessionId, page } = await watch('throttled');
  const sfu = agent.streaming!.sfu;
  const first = servers.of(deviceId)[0];
  assert.deepEqual(settings(first), [1280, 30, 2_000_000]);
  // The controller does not judge a viewer's estimate in its first 5 s (mediasoup is still probing).
  await waitFor(
    'six seconds of frames',
    () => page.state(),
    (s) => s.frames >= 180,
    { timeoutMs: 30_000 },
  );
  const starts = () => servers.of(deviceId).length;
  const before = starts();

  const limited = performance.now();
  assert.equal(await sfu.limitOutgoingBitrate(sessionId, 250_000), true);
  // GCC's estimate falls to the link over a few seconds; the controller steps down at the first
  // sample whose budget is far enough below the rate. On a loaded machine that sample can come
  // before the estimate reached the link (seen: a 400 kbit/s estimate, a 280 kbit/s step), and a
  // second step follows: the phone ends at most at the link within two restarts.
  const down = await waitFor(
    'the phone restarted at most at the link',
    () => servers.of(deviceId).at(-1),
    (s): s is ScrcpyServerStart => s !== undefined && s.videoBitRate <= 250_000,
    { timeoutMs: 30_000 },
  );
  assert.ok(down.maxSize < 1280, `a smaller size under 250 kbit/s: ${settings(down)}`);
  const downSeconds = (down.at - limited) / 1000;
  const steps = starts() - before;
  assert.ok(
    steps >= 1 && steps <= 2,
    `one step down, or two: ${servers.of(deviceId).map(settings).join(' | ')}`,
  );

  const lifted = performance.now();
  assert.equal(await sfu.limitOutgoingBitrate(sessionId, 0), true);
  const up = await waitFor(
    'the phone restarted at a higher bit rate',
    () => servers.of(deviceId).at(-1),
    (s): s is ScrcpyServerStart => s !== undefined && s.videoBitRate > down.videoBitRate,
    { timeoutMs: 60_000 },
  );
  const upSeconds = (up.at - lifted) / 1000;
  // Settled: no change for longer than the controller needs to find room for a step up (8 s) and
  // its dwell (3 s); a climb still under way after 90 s is reported as such.
  const settled = await waitFor(
    'the phone settled',
    () => servers.of(deviceId).at(-1)!,
    (s) => performance.now() - s.at > 12_000,
    { timeoutMs: 90_000 },
  ).catch(() => undefined);
  const trail = servers
    .of(deviceId)
    .slice(before - 1)
    .map(
      (s) => `${((s.at - limited) / 1000).toFixed(1)}s ${s.maxSize}/${s.maxFps}/${s.videoBitRate / 1000}k`,
    );
  t.diagnostic(
    `limit 250 kbit/s -> step down after ${downSeconds.toFixed(1)} s; lifted -> first step up after ` +
      `${upSeconds.toFixed(1)} s; ${settled ? `settled ${((settled.at - lifted) / 1000).toFixed(1)} s after the lift` : 'still climbing 90 s after the lift'}; ` +
      `starts: ${trail.join(', ')}`,
  );
  await page.close();
});
