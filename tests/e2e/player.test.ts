// <cphone-player> end to end: the built script in a page of another origin than the sfu, in
// Debian's Chromium, against the real control plane (stream sessions through the public API), a
// real agent (sim runtime, virtual phones speaking ADB and scrcpy) and its sfu on plain ws over
// loopback (CPHONE_STREAM_TLS=off, the embedded default). Screenshots go to docs/screenshots/.
import assert from 'node:assert/strict';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { Agent } from '@cphone/host-agent';
import { HostState, StreamRights, StreamSessionState } from '@cphone/proto';
import { waitFor } from '@cphone/proto/testing';
import { launchChromium, playerPageHtml } from '@cphone/sfu/testing';
import type { Browser, BrowserContext } from 'playwright-core';
import { freePort, type Harness, runningPhone, shell, startHarness, startPhones } from './harness.js';
import { type EmbedServer, PlayerPage, startEmbedServer } from './player-page.js';

const SCREENSHOTS = join(import.meta.dirname, '..', '..', 'docs', 'screenshots');
const TEXT = '你好，世界 こんにちは 안녕하세요 🙂';

let h: Harness;
let agent: Agent;
let browser: Browser;
let context: BrowserContext;
let server: EmbedServer;
let runtime: Awaited<ReturnType<typeof startPhones>>['runtime'];
let phone: Awaited<ReturnType<typeof startPhones>>['phone'];
let streamPort: number;
const pages: PlayerPage[] = [];
const startStreamingAgent = () =>
  h.startAgent({
    env: { CPHONE_STREAM_PORT: String(streamPort), CPHONE_STREAM_TLS: 'off' },
    // The embedded default's test page at /view, as `npm start` serves it.
    deps: { runtime, streamPage: playerPageHtml },
  });

before(async () => {
  h = await startHarness();
  ({ runtime, phone } = await startPhones(h));
  streamPort = await freePort();
  agent = await startStreamingAgent();
  await h.waitForHost(HostState.READY, true);
  server = await startEmbedServer();
  browser = await launchChromium();
  context = await browser.newContext({ viewport: { width: 900, height: 800 } });
  await context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: server.origin });
  await mkdir(SCREENSHOTS, { recursive: true });
});

after(async () => {
  await Promise.all(pages.map((p) => p.close().catch(() => undefined)));
  await browser?.close();
  await server?.close();
  await agent?.close();
  await runtime?.close();
  await h?.close();
});

async function session(deviceId: string, rights = StreamRights.CONTROL, ttlSeconds = 600) {
  const { streamSession } = await h.devices.createStreamSession({ deviceId, rights, ttlSeconds });
  assert.ok(streamSession);
  return { sfuUrl: streamSession.sfuUrl, token: streamSession.token, sessionId: streamSession.sessionId };
}

/** A session whose token expired an hour ago: issued while the control plane's clock stood 2 h back. */
async function expiredSession(deviceId: string) {
  h.clock.set(new Date(Date.now() - 2 * 3600_000));
  try {
    return await session(deviceId, StreamRights.CONTROL, 30);
  } finally {
    h.clock.set(new Date());
  }
}

async function open(path = '/'): Promise<PlayerPage> {
  const page = await PlayerPage.open(context, server, path);
  pages.push(page);
  return page;
}

const playing = (page: PlayerPage, frames = 10) =>
  waitFor(
    'the player connected and frames presented',
    () => page.snapshot(),
    (s) => s.state === 'connected' && s.frames >= frames && s.size.width > 0,
    { timeoutMs: 20_000 },
  );

/** A CONTROL player on the phone, playing with its input channel open. */
async function controlling(deviceId: string, attrs: Record<string, string> = {}, style?: string) {
  const s = await session(deviceId);
  const page = await open();
  await page.add(attrs, s, style);
  await playing(page);
  await waitFor(
    'input open',
    () => page.snapshot(),
    (v) => v.inputOpen,
  );
  return { s, page };
}

/** Leaves properly (a closed page holds its seat for the resume window) and waits for the seat to be free. */
async function leave(page: PlayerPage, deviceId: string, sessionId: string): Promise<void> {
  await page.page.evaluate(() =>
    (document.querySelector('cphone-player') as unknown as { disconnect(): void }).disconnect(),
  );
  await waitFor(
    'the session ended',
    async () =>
      (await h.devices.listStreamSessions({ deviceId })).streamSessions.find(
        (r) => r.sessionId === sessionId,
      ),
    (r) => r?.state === StreamSessionState.ENDED,
  );
}

/** Input the phone got from now on. */
function inputsFrom(deviceId: string) {
  const start = phone(deviceId).events.input.length;
  return () => phone(deviceId).events.input.slice(start);
}

describe('<cphone-player> plays and takes input', () => {
  let deviceId: string;

  before(async () => {
    deviceId = await runningPhone(h, 'player');
  });

  test('it plays: frames decode at the phone size, the first-frame event has its ms, and the time reaches the session stats', async () => {
    const s = await session(deviceId);
    const page = await open();
    await page.add({ stats: '' }, s);
    const state = await playing(page);
    assert.deepEqual(state.size, { width: 720, height: 1280 });
    // The stats overlay, on with the `stats` attribute.
    await waitFor(
      'the stats overlay',
      () => page.page.locator('cphone-player .stats').textContent(),
      (t) => /fps [1-9]/.test(t ?? '') && /first frame \d+ ms/.test(t ?? ''),
    );
    const first = state.events.find((e) => e.type === 'cphone-first-frame')?.detail as { ms: number };
    assert.ok(first && first.ms > 0 && first.ms === state.firstFrameMs, JSON.stringify(first));
    assert.ok(state.events.some((e) => e.type === 'cphone-video-size'));
    assert.deepEqual(
      state.events.filter((e) => e.type === 'cphone-state').map((e) => (e.detail as { state: string }).state),
      ['connecting', 'connected'],
    );
    const live = await waitFor(
      'the first frame time in the session stats',
      async () =>
        (await h.devices.listStreamSessions({ deviceId, activeOnly: true })).streamSessions.find(
          (r) => r.sessionId === s.sessionId,
        ),
      (r) => (r?.stats?.firstFrameMs ?? 0) > 0,
      { timeoutMs: 20_000 },
    );
    assert.ok(Math.abs((live?.stats?.firstFrameMs ?? 0) - first.ms) < 0.01);
    await page.page.locator('cphone-player').screenshot({ path: join(SCREENSHOTS, 'player.png') });
    const png = await page.page.evaluate(async () => {
      const blob = await (
        document.querySelector('cphone-player') as unknown as { screenshot(): Promise<Blob> }
      ).screenshot();
      return { type: blob.type, size: blob.size };
    });
    assert.equal(png.type, 'image/png');
    assert.ok(png.size > 1000);
    await leave(page, deviceId, s.sessionId);
    const ended = (await h.devices.listStreamSessions({ deviceId })).streamSessions.find(
      (r) => r.sessionId === s.sessionId,
    );
    assert.ok((ended?.stats?.firstFrameMs ?? 0) > 0);
  });

  test('a tap lands at the device coordinates, also when the picture is letterboxed; the letterbox sends nothing', async () => {
    // A landscape box for a portrait phone: bars left and right of the picture.
    const { s, page } = await controlling(deviceId, {}, 'width:800px;height:450px');
    const shown = await page.shownRect();
    assert.ok(shown.left > 100, JSON.stringify(shown));
    const got = inputsFrom(deviceId);
    // A quarter across and three quarters down the picture is (180, 960) on the 720x1280 phone.
    await page.page.mouse.click(shown.left + shown.width / 4, shown.top + (shown.height * 3) / 4);
    const down = await waitFor(
      'the touch on the phone',
      async () => got().find((e) => e.kind === 'motion' && e.action === 'down'),
      (e) => e !== undefined,
    );
    assert.ok(down?.kind === 'motion');
    assert.ok(Math.abs(down.x - 180) <= 2 && Math.abs(down.y - 960) <= 2, `${down.x},${down.y}`);
    await waitFor(
      'the lift',
      async () => got().some((e) => e.kind === 'motion' && e.action === 'up'),
      Boolean,
    );
    const sent = (await page.snapshot()).events.filter((e) => e.type === 'cphone-input').length;
    await page.page.mouse.click(shown.left / 2, shown.top + shown.height / 2);
    await page.page.mouse.click(shown.left + 10, shown.top + 10); // a later tap proves the first was not queued
    await waitFor(
      'the second tap',
      async () => got().filter((e) => e.kind === 'motion' && e.action === 'down'),
      (v) => v.length === 2,
    );
    const after = (await page.snapshot()).events.filter((e) => e.type === 'cphone-input');
    assert.equal(after.length, sent + 2, 'only the tap on the picture was sent (down and up)');
    await page.page
      .locator('cphone-player')
      .screenshot({ path: join(SCREENSHOTS, 'player-letterboxed.png') });
    await leave(page, deviceId, s.sessionId);
  });

  test('Ctrl+drag pinches with a second mirrored finger; the wheel scrolls', async () => {
    const { s, page } = await controlling(deviceId);
    const shown = await page.shownRect();
    const got = inputsFrom(deviceId);
    const at = (fx: number, fy: number) =>
      [shown.left + shown.width * fx, shown.top + shown.height * fy] as const;
    await page.page.keyboard.down('Control');
    await page.page.mouse.move(...at(0.4, 0.4));
    await page.page.mouse.down();
    await page.page.mouse.move(...at(0.3, 0.3), { steps: 3 });
    await page.page.mouse.up();
    await page.page.keyboard.up('Control');
    const motions = await waitFor(
      'both fingers down and up on the phone',
      async () => got().flatMap((e) => (e.kind === 'motion' ? [e] : [])),
      (v) => v.some((e) => e.action === 'pointer-up') && v.some((e) => e.action === 'up'),
    );
    // The second finger went down while the first was down, mirrored through the centre.
    const second = motions.find((e) => e.action === 'pointer-down' && e.pointerCount === 2);
    assert.ok(
      second,
      JSON.stringify(motions, (_k, v) => (typeof v === 'bigint' ? Number(v) : v)),
    );
    assert.ok(
      Math.abs(second.x - 720 * 0.6) <= 2 && Math.abs(second.y - 1280 * 0.6) <= 2,
      `${second.x},${second.y}`,
    );
    await page.page.mouse.move(...at(0.5, 0.5));
    await page.page.mouse.wheel(0, 120);
    const scroll = await waitFor(
      'the scroll on the phone',
      async () => got().find((e) => e.kind === 'scroll'),
      (e) => e !== undefined,
    );
    assert.ok(scroll?.kind === 'scroll' && scroll.vScroll < 0, JSON.stringify(scroll));
    await leave(page, deviceId, s.sessionId);
  });

  test('the quality picker switches live: 480p makes the phone send a picture at most 848 high', async () => {
    const { s, page } = await controlling(deviceId);
    assert.deepEqual((await page.snapshot()).size, { width: 720, height: 1280 });
    await page.page.locator('cphone-player select').selectOption('480p');
    const smaller = await waitFor(
      'a smaller picture, on the same connection',
      () => page.snapshot(),
      (v) => v.size.height > 0 && v.size.height <= 848,
      { timeoutMs: 20_000 },
    );
    assert.equal(smaller.state, 'connected');
    assert.equal(await page.page.locator('cphone-player').getAttribute('quality'), '480p');
    await leave(page, deviceId, s.sessionId);
  });

  test('text through an IME composition arrives intact; Enter and Backspace arrive as key codes', async () => {
    const { s, page } = await controlling(deviceId);
    const shown = await page.shownRect();
    await page.page.mouse.click(shown.left + shown.width / 2, shown.top + shown.height / 2); // focus
    const cdp = await context.newCDPSession(page.page);
    await cdp.send('Input.imeSetComposition', { text: '你好', selectionStart: 2, selectionEnd: 2 });
    await cdp.send('Input.imeSetComposition', { text: '你好，世界', selectionStart: 5, selectionEnd: 5 });
    await cdp.send('Input.insertText', { text: TEXT });
    const dump = await waitFor(
      'the text in the focused field',
      () => shell(h, deviceId, 'uiautomator dump /dev/tty'),
      (xml) => xml.includes('🙂'),
    );
    assert.ok(dump.includes(`text="${TEXT}"`), dump);
    const texts = (await page.snapshot()).events.filter(
      (e) => e.type === 'cphone-input' && (e.detail as { type: string }).type === 'text',
    );
    assert.deepEqual(
      texts.map((e) => (e.detail as { text: string }).text),
      [TEXT],
      'one text message, not the composition steps',
    );
    const got = inputsFrom(deviceId);
    await page.page.keyboard.press('Enter');
    await page.page.keyboard.press('Backspace');
    await page.page.keyboard.press('Shift+ArrowLeft');
    const keys = await waitFor(
      'the keys on the phone',
      async () => got().filter((e) => e.kind === 'key'),
      (v) => v.filter((e) => e.kind === 'key' && e.action === 'up').length >= 4,
    );
    const codes = keys.flatMap((e) => (e.kind === 'key' ? [[e.action, e.keyCode, e.metaState]] : []));
    assert.deepEqual(codes.slice(0, 4), [
      ['down', 66, 0],
      ['up', 66, 0],
      ['down', 67, 0],
      ['up', 67, 0],
    ]);
    // Shift then ArrowLeft with Shift's meta state (SHIFT_ON | SHIFT_LEFT_ON).
    assert.ok(
      codes.some(([a, k, m]) => a === 'down' && k === 21 && m === 0x41),
      JSON.stringify(codes),
    );
    await leave(page, deviceId, s.sessionId);
  });

  test('the clipboard goes both ways: a paste reaches the phone, the phone’s clipboard reaches the page', async () => {
    const { s, page } = await controlling(deviceId);
    await page.page.evaluate(() => {
      const keys = document.querySelector('cphone-player')?.shadowRoot?.querySelector('textarea');
      const data = new DataTransfer();
      data.setData('text/plain', '剪贴板 from the page');
      keys?.dispatchEvent(
        new ClipboardEvent('paste', { clipboardData: data, bubbles: true, cancelable: true }),
      );
    });
    await waitFor(
      'the phone clipboard',
      () => shell(h, deviceId, 'cmd clipboard get-text'),
      (t) => t.includes('剪贴板 from the page'),
    );
    await shell(h, deviceId, "cmd clipboard set-text 'copied on the phone 📋'");
    const event = await waitFor(
      'the cphone-clipboard event',
      async () => (await page.snapshot()).events.find((e) => e.type === 'cphone-clipboard'),
      (e) => e !== undefined,
    );
    assert.deepEqual(event?.detail, { text: 'copied on the phone 📋' });
    // And on the browser's clipboard, which this page may write (the permission is granted).
    await waitFor(
      'the browser clipboard',
      () => page.page.evaluate(() => navigator.clipboard.readText()),
      (t) => t === 'copied on the phone 📋',
    );
    await leave(page, deviceId, s.sessionId);
  });

  test('view-only sends nothing and opens no input channel', async () => {
    const s = await session(deviceId);
    const page = await open();
    await page.add({ 'view-only': '' }, s);
    await playing(page);
    const got = inputsFrom(deviceId);
    const shown = await page.shownRect();
    await page.page.mouse.click(shown.left + 50, shown.top + 50);
    await page.page.keyboard.type('abc');
    await page.page.keyboard.press('Enter');
    const sent = await page.page.evaluate(() =>
      (document.querySelector('cphone-player') as unknown as { sendInput(m: unknown): boolean }).sendInput({
        type: 'nav',
        button: 'home',
      }),
    );
    assert.equal(sent, false);
    const state = await page.snapshot();
    assert.equal(state.inputOpen, false);
    assert.equal(state.events.filter((e) => e.type === 'cphone-input').length, 0);
    // The nav buttons are not shown.
    assert.equal(await page.page.locator('cphone-player button[data-nav="home"]').isVisible(), false);
    // A frame later the phone still got nothing (the player has no channel to send on).
    await playing(page, state.frames + 5);
    assert.deepEqual(got(), []);
    await leave(page, deviceId, s.sessionId);
  });

  test('the toolbar’s nav buttons reach the phone; Tab reaches every button and each has an ARIA label', async () => {
    const { s, page } = await controlling(deviceId, { lang: 'zh-CN' });
    const got = inputsFrom(deviceId);
    await page.page.locator('cphone-player button[data-nav="home"]').click();
    await page.page.locator('cphone-player button[data-nav="volume-up"]').click();
    const keys = await waitFor(
      'home and volume up on the phone',
      async () => got().flatMap((e) => (e.kind === 'key' && e.action === 'down' ? [e.keyCode] : [])),
      (v) => v.includes(3) && v.includes(24),
    );
    assert.deepEqual(keys, [3, 24]);
    // Keyboard only: Tab from the page's start walks through the player's controls.
    await page.page.evaluate(() => (document.activeElement as HTMLElement | null)?.blur());
    const reached: { tag: string; label: string | null }[] = [];
    for (let i = 0; i < 14; i++) {
      await page.page.keyboard.press('Tab');
      reached.push(
        await page.page.evaluate(() => {
          const active = document.querySelector('cphone-player')?.shadowRoot?.activeElement;
          return { tag: active?.tagName ?? '', label: active?.getAttribute('aria-label') ?? null };
        }),
      );
    }
    const labels = reached.filter((r) => r.tag === 'BUTTON').map((r) => r.label);
    for (const label of ['返回', '主屏幕', '最近应用', '音量减', '音量加', '电源', '旋转', '全屏'])
      assert.ok(labels.includes(label), `${label} not reached: ${JSON.stringify(reached)}`);
    assert.ok(
      reached.every((r) => r.tag === '' || (r.label ?? '') !== ''),
      JSON.stringify(reached),
    );
    await page.page.locator('cphone-player').screenshot({ path: join(SCREENSHOTS, 'player-zh-CN.png') });
    await leave(page, deviceId, s.sessionId);
  });
});

describe('<cphone-player> embedded with a token, and its sessions over time', () => {
  let deviceId: string;

  before(async () => {
    deviceId = await runningPhone(h, 'embedded');
  });

  test('a page of another origin plays with only token and sfu-url; an expired token shows why', async () => {
    const s = await session(deviceId);
    const page = await open(`/embed?${new URLSearchParams({ token: s.token, 'sfu-url': s.sfuUrl })}`);
    assert.notEqual(new URL(s.sfuUrl).port, new URL(server.origin).port);
    await playing(page);
    await leave(page, deviceId, s.sessionId);

    const old = await expiredSession(deviceId);
    const refused = await open(`/embed?${new URLSearchParams({ token: old.token, 'sfu-url': old.sfuUrl })}`);
    const closed = await waitFor(
      'the refusal',
      () => refused.snapshot(),
      (v) => v.state === 'closed',
    );
    assert.match(closed.text, /The stream token has expired \(4401\)/);
    const stateEvent = closed.events.findLast((e) => e.type === 'cphone-state')?.detail as { code: number };
    assert.equal(stateEvent.code, 4401);
    assert.match(
      (await refused.page.locator('cphone-player .status').textContent()) ?? '',
      /The stream token has expired/,
    );
    await refused.page.locator('cphone-player').screenshot({ path: join(SCREENSHOTS, 'player-expired.png') });
  });

  test('the embedded default’s plain-ws endpoint: its /view page plays in the browser with no certificate to accept', async () => {
    const s = await session(deviceId);
    assert.match(s.sfuUrl, /^ws:\/\/127\.0\.0\.1:\d+\/signal$/);
    const view = await context.newPage();
    await view.goto(`http://${new URL(s.sfuUrl).host}/view#token=${s.token}`, {
      waitUntil: 'domcontentloaded',
    });
    await waitFor(
      'the test page watching',
      () => view.locator('#status').textContent(),
      (t) => /^watching /.test(t ?? ''),
      { timeoutMs: 20_000 },
    );
    await view.evaluate('cphoneViewer.request("leave")').catch(() => undefined);
    await view.close();
  });

  test('with a tokenProvider the player renews an expired token by itself', async () => {
    const old = await expiredSession(deviceId);
    const fresh = await session(deviceId);
    const page = await open();
    // The provider first hands out the expired token (the sfu refuses it as expired), then a fresh one.
    await page.page.evaluate(
      ([o, f]) => {
        const tokens = [o, f];
        const w = window as unknown as { __provided: number };
        w.__provided = 0;
        const el = document.createElement('cphone-player') as HTMLElement & {
          tokenProvider?: () => Promise<unknown>;
        };
        el.tokenProvider = async () => tokens[Math.min(w.__provided++, 1)];
        document.body.append(el);
      },
      [old, fresh] as const,
    );
    await playing(page);
    const provided = await page.page.evaluate(() => (window as unknown as { __provided: number }).__provided);
    assert.equal(provided, 2);
    const states = (await page.snapshot()).events
      .filter((e) => e.type === 'cphone-state')
      .map((e) => e.detail as { state: string; text: string });
    assert.ok(
      states.some((e) => e.state === 'reconnecting' && /expired/.test(e.text)),
      JSON.stringify(states),
    );
    await leave(page, deviceId, fresh.sessionId);
  });

  test('when the agent restarts the player reconnects by itself and plays on', async () => {
    const s = await session(deviceId);
    const page = await open();
    await page.add({}, s);
    await playing(page);
    await agent.close();
    await waitFor(
      'reconnecting',
      () => page.snapshot(),
      (v) => v.state === 'reconnecting',
    );
    const before = (await page.snapshot()).frames;
    agent = await startStreamingAgent();
    const back = await waitFor(
      'back with new frames',
      () => page.snapshot(),
      (v) => v.state === 'connected' && v.frames > before + 10,
      { timeoutMs: 30_000 },
    );
    assert.deepEqual(back.size, { width: 720, height: 1280 });
    await leave(page, deviceId, s.sessionId);
  });
});
