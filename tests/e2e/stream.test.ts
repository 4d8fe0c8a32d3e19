// A phone's screen in a real browser, end to end: the real control plane issues a stream session
// through the public API, a real agent (sim runtime, virtual phones speaking ADB and scrcpy 3.3.3)
// serves it from its sfu over WSS, and Debian's Chromium plays it with mediasoup-client — frames
// decoded at the phone's size, sound received, touches landing at device coordinates, text in any
// script typed intact, the clipboard both ways, revocation and a stopped phone ending the session.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { Agent } from '@cphone/host-agent';
import { HostState, StreamRights, StreamSessionState } from '@cphone/proto';
import { waitFor } from '@cphone/proto/testing';
import { launchChromium, ViewerPage } from '@cphone/sfu/testing';
import type { Browser, BrowserContext } from 'playwright-core';
import { freePort, type Harness, runningPhone, shell, startHarness, startPhones } from './harness.js';

let h: Harness;
let agent: Agent;
let browser: Browser;
let context: BrowserContext;
const pages: ViewerPage[] = [];
let runtime: Awaited<ReturnType<typeof startPhones>>['runtime'];
let phone: Awaited<ReturnType<typeof startPhones>>['phone'];
let streamPort: number;
const startStreamingAgent = () =>
  h.startAgent({ env: { CPHONE_STREAM_PORT: String(streamPort) }, deps: { runtime } });

before(async () => {
  h = await startHarness();
  ({ runtime, phone } = await startPhones(h));
  streamPort = await freePort();
  agent = await startStreamingAgent();
  await h.waitForHost(HostState.READY, true);
  browser = await launchChromium();
  // The agent's endpoint has a certificate from its generated CA, which this browser does not know.
  context = await browser.newContext({ ignoreHTTPSErrors: true });
});

after(async () => {
  await Promise.all(pages.map((p) => p.close().catch(() => undefined)));
  await browser?.close();
  await agent?.close();
  await runtime?.close();
  await h?.close();
});

async function session(deviceId: string, rights = StreamRights.CONTROL) {
  const { streamSession } = await h.devices.createStreamSession({ deviceId, rights });
  assert.ok(streamSession);
  return streamSession;
}

/** Leaves properly (a closed page would hold its seat for the resume window). */
async function leave(page: ViewerPage): Promise<void> {
  await page.request('leave').catch(() => undefined);
  await waitFor(
    'the socket closed',
    () => page.state(),
    (v) => v.closed !== undefined,
  );
}

async function viewer(): Promise<ViewerPage> {
  const page = await ViewerPage.open(context);
  pages.push(page);
  return page;
}

describe('a phone in the browser', () => {
  let deviceId: string;

  before(async () => {
    deviceId = await runningPhone(h, 'streamed');
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
    ); // The join is in the audit trail, with who watched from where.
    const joined = await waitFor(
      'the join audited',
      () =>
        h.plane.deps.db
          .selectFrom('audit_log')
          .select(['method', 'detail', 'resource'])
          .where('method', '=', 'StreamSession/Joined')
          .execute(),
      (rows) => rows.some((r) => String(r.resource).includes(s.sessionId)),
    );
    const row = joined.find((r) => String(r.resource).includes(s.sessionId));
    assert.match(JSON.stringify(row?.detail), /viewer_address[^,]*127\.0\.0\.1/);
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

describe('touch, text, clipboard and rotation reach the phone', () => {
  let deviceId: string;

  before(async () => {
    deviceId = await runningPhone(h, 'touched');
  });

  test('a tap at video coordinates lands at the device coordinates; text in any script arrives intact', async () => {
    const s = await session(deviceId);
    const page = await viewer();
    await page.start({ url: s.sfuUrl, token: s.token });
    await waitFor(
      'frames and input',
      () => page.state(),
      (v) => v.frames > 0 && v.inputOpen,
    );
    // The viewer shows the 720x1280 phone scaled to 360x640: (90, 480) there is (180, 960) on the phone.
    const touch = { type: 'touch', pointerId: 0, x: 90, y: 480, frameWidth: 360, frameHeight: 640 };
    await page.sendInput({ ...touch, action: 'down', pressure: 1 });
    await page.sendInput({ ...touch, action: 'up', pressure: 0 });
    const down = await phone(deviceId).events.waitForInput((e) => e.kind === 'motion' && e.action === 'down');
    assert.ok(down.kind === 'motion');
    assert.deepEqual([down.x, down.y], [180, 960]);
    await phone(deviceId).events.waitForInput((e) => e.kind === 'motion' && e.action === 'up');

    const text = 'Hello, 你好，世界 こんにちは 안녕하세요 🙂';
    await page.sendInput({ type: 'text', text });
    const dump = await waitFor(
      'the text in the focused field',
      () => shell(h, deviceId, 'uiautomator dump /dev/tty'),
      (xml) => xml.includes('🙂'),
    );
    assert.ok(dump.includes(`text="${text}"`), dump);
    await leave(page);
  });

  test('the clipboard goes both ways', async () => {
    const s = await session(deviceId);
    const page = await viewer();
    await page.start({ url: s.sfuUrl, token: s.token });
    await waitFor(
      'input open',
      () => page.state(),
      (v) => v.inputOpen,
    );
    await page.sendInput({ type: 'clipboard', text: '剪贴板 from the browser', paste: false });
    await waitFor(
      'the phone clipboard',
      () => shell(h, deviceId, 'cmd clipboard get-text'),
      (t) => t.includes('剪贴板 from the browser'),
    );
    await shell(h, deviceId, "cmd clipboard set-text 'copied on the phone 📋'");
    await waitFor(
      'the clipboard pushed to the viewer',
      () => page.state(),
      (v) => v.outputs.some((o) => JSON.stringify(o).includes('copied on the phone 📋')),
    );
    await leave(page);
  });

  test('rotating the phone changes the video size the browser decodes, without reconnecting', async () => {
    const s = await session(deviceId);
    const page = await viewer();
    await page.start({ url: s.sfuUrl, token: s.token });
    await waitFor(
      'portrait frames',
      () => page.state(),
      (v) => v.frames > 0 && v.inputOpen,
    );
    await page.sendInput({ type: 'rotate' });
    const landscape = await waitFor(
      'landscape frames',
      () => page.state(),
      (v) => v.width > v.height,
    );
    assert.deepEqual([landscape.width, landscape.height], [1280, 720]);
    assert.equal(landscape.closed, undefined);
    await page.sendInput({ type: 'rotate' });
    await waitFor(
      'portrait again',
      () => page.state(),
      (v) => v.height > v.width,
    );
  });
});

describe('who may watch, and for how long', () => {
  let deviceId: string;

  before(async () => {
    deviceId = await runningPhone(h, 'guarded');
  });

  test('a VIEW session watches, but its input channel is refused', async () => {
    const s = await session(deviceId, StreamRights.VIEW);
    const page = await viewer();
    await page.startQuietly({ url: s.sfuUrl, token: s.token, input: true });
    const state = await waitFor(
      'the refusal',
      () => page.state(),
      (v) => v.closed !== undefined,
    );
    assert.equal(state.closed?.code, 4403);
  });

  test('a forged token and a tampered one are refused with 4401', async () => {
    const s = await session(deviceId);
    const [head, body, signature] = s.token.split('.');
    const claims = JSON.parse(Buffer.from(body ?? '', 'base64url').toString()) as Record<string, unknown>;
    const otherBody = Buffer.from(JSON.stringify({ ...claims, dev: 'someone-else' })).toString('base64url');
    const forged = `${head}.${otherBody}.${signature}`;
    const tampered = `${head}.${body}.${(signature ?? '').slice(0, -4)}AAAA`;
    for (const token of [forged, tampered]) {
      const page = await viewer();
      await page.startQuietly({ url: s.sfuUrl, token });
      const state = await waitFor(
        'the refusal',
        () => page.state(),
        (v) => v.closed !== undefined,
      );
      assert.equal(state.closed?.code, 4401, state.closed?.reason);
    }
  });

  test('revoking the session through the API ends it with the reason shown; its token joins no more', async () => {
    const s = await session(deviceId);
    const page = await viewer();
    await page.start({ url: s.sfuUrl, token: s.token });
    await waitFor(
      'frames',
      () => page.state(),
      (v) => v.frames > 0,
    );
    await h.devices.revokeStreamSession({ sessionId: s.sessionId, reason: 'support call over' });
    const state = await waitFor(
      'the close',
      () => page.state(),
      (v) => v.closed !== undefined,
    );
    assert.equal(state.closed?.code, 4410);
    assert.match(state.closed?.reason ?? '', /support call over/);
    const again = await viewer();
    await again.startQuietly({ url: s.sfuUrl, token: s.token });
    const refused = await waitFor(
      'the refusal',
      () => again.state(),
      (v) => v.closed !== undefined,
    );
    assert.equal(refused.closed?.code, 4401);
  });

  test('stopping the phone ends its sessions with a reason', async () => {
    const s = await session(deviceId);
    const page = await viewer();
    await page.start({ url: s.sfuUrl, token: s.token });
    await waitFor(
      'frames',
      () => page.state(),
      (v) => v.frames > 0,
    );
    await h.devices.stopDevice({ deviceId });
    const state = await waitFor(
      'the close',
      () => page.state(),
      (v) => v.closed !== undefined,
    );
    assert.ok(
      [4410, 4411].includes(state.closed?.code ?? 0),
      `${state.closed?.code} ${state.closed?.reason}`,
    );
    assert.match(state.closed?.reason ?? '', /STOPPED|stopped/);
  });
});

describe('an agent restart', () => {
  test('the page joins again by itself with the same session and the video resumes', async () => {
    const deviceId = await runningPhone(h, 'restarted');
    const s = await session(deviceId);
    const page = await viewer();
    await page.start({ url: s.sfuUrl, token: s.token, reconnect: true });
    await waitFor(
      'frames',
      () => page.state(),
      (v) => v.frames > 0,
    );
    await agent.close();
    // The phone keeps running (its runtime is not the agent's); the viewer is told the agent went.
    const gone = await waitFor(
      'the close',
      () => page.state(),
      (v) => v.closed !== undefined,
    );
    assert.ok([1001, 1006].includes(gone.closed?.code ?? 0), `${gone.closed?.code} ${gone.closed?.reason}`);
    const before = gone.frames;
    agent = await startStreamingAgent();
    const back = await waitFor(
      'the page back with new frames',
      () => page.state(),
      (v) => v.reconnects >= 1 && v.closed === undefined && v.frames > before + 10,
      { timeoutMs: 30_000 },
    );
    assert.equal(back.joined?.sessionId, s.sessionId);
    assert.deepEqual([back.width, back.height], [720, 1280]);
  });
});
