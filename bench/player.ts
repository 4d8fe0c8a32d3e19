// npm run bench -- player [--first-frames 10] [--glass-window 20] [--taps 50]
// <cphone-player>, the built script in Chromium on a page of another origin, against the real
// control plane, agent (plain ws on loopback, CPHONE_STREAM_TLS=off) and a virtual phone streaming
// the 2 Mbit/s 720p recording:
//   first_frame_p50_ms      connect() -> the first decoded frame (requestVideoFrameCallback), as the
//                           element measures it (vs the sfu's test viewer, start() -> its first frame)
//   glass_to_glass_p50/p99_ms  capture on the phone -> presented in the element, per frame, as the
//                           sfu works it out from the element's reports
//   input_to_device_p50_ms  a tap's pointerdown in the page -> the virtual phone recording the touch
//                           (both on this machine's clock)

import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import type { VirtualPhone } from '@cphone/host-agent';
import { StreamRights } from '@cphone/proto';
import { waitFor } from '@cphone/proto/testing';
import { launchChromium, ViewerPage } from '@cphone/sfu/testing';
import { playerBundle } from '@cphone/web/player-bundle';
import type { Browser, Page } from 'playwright-core';
import { arg } from './_args.js';
import { ms, percentile, writePaddedFixtures } from './_sfu-media.js';
import { type Stack, startStack } from './_sfu-stack.js';

const TARGETS = { firstFrameMs: 1000, glassP50: 60, inputP50: 20 };
const dist = (v: number[]) =>
  `p50 ${ms(percentile(v, 50))} ms, p95 ${ms(percentile(v, 95))} ms, p99 ${ms(percentile(v, 99))} ms, max ${ms(Math.max(...v))} ms (n ${v.length})`;

/** Report answers' per-frame figures, read off the page's signaling sockets (the element keeps none). */
const WATCH_REPORTS = `(() => {
  globalThis.__g2g = [];
  const Native = WebSocket;
  globalThis.WebSocket = class extends Native {
    constructor(...a) {
      super(...a);
      this.addEventListener('message', (e) => {
        const m = JSON.parse(e.data);
        const g = m.result && m.result.glassToGlassMs;
        if (Array.isArray(g)) for (const v of g) if (typeof v === 'number') globalThis.__g2g.push(v);
      });
    }
  };
})()`;

async function embedServer(): Promise<{ origin: string; close(): void }> {
  const script = await playerBundle();
  const server = createServer((req, res) => {
    if (req.url === '/cphone-player.js')
      res.writeHead(200, { 'content-type': 'text/javascript' }).end(script);
    else
      res
        .writeHead(200, { 'content-type': 'text/html' })
        .end(
          '<!doctype html><html><body style="margin:0"><script src="/cphone-player.js"></script></body></html>',
        );
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    origin: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: () => {
      server.closeAllConnections();
      server.close();
    },
  };
}

async function session(stack: Stack, deviceId: string, rights = StreamRights.CONTROL) {
  const { streamSession: s } = await stack.devices.createStreamSession({ deviceId, rights });
  return { sfuUrl: s?.sfuUrl ?? '', token: s?.token ?? '' };
}

/** A page with one element playing `s`; resolves with its first-frame time. */
async function playerPage(browser: Browser, origin: string, s: { sfuUrl: string; token: string }) {
  const page = await browser.newPage({ viewport: { width: 400, height: 760 } });
  await page.addInitScript(WATCH_REPORTS);
  await page.goto(origin, { waitUntil: 'domcontentloaded' });
  const firstFrameMs = (await page.evaluate(
    `new Promise((resolve) => {
      const el = document.createElement('cphone-player');
      el.style.cssText = 'width:360px;height:700px';
      el.addEventListener('cphone-first-frame', (e) => resolve(e.detail.ms));
      el.session = ${JSON.stringify(s)};
      document.body.append(el);
    })`,
  )) as number;
  return { page, firstFrameMs };
}

const leave = (page: Page) => page.evaluate(`document.querySelector('cphone-player').disconnect()`);

async function main(): Promise<void> {
  const trials = arg('first-frames', 10);
  const glassS = arg('glass-window', 20);
  const taps = arg('taps', 50);
  console.log(
    `player: ${(await import('node:os')).cpus().length} cores, load average ${loadavg()
      .map((l) => l.toFixed(1))
      .join(' ')} at the start`,
  );
  const fixtures = await mkdtemp(join(tmpdir(), 'cphone-bench-player-'));
  await writePaddedFixtures(fixtures);
  const phones = new Map<string, VirtualPhone>();
  const stack = await startStack({
    videoFixturesDir: fixtures,
    maxViewers: 10,
    agentEnv: { CPHONE_STREAM_TLS: 'off' },
    phones,
  });
  const server = await embedServer();
  const browser = await launchChromium();
  try {
    const deviceId = await stack.runningPhone('bench-player');
    const phone = phones.get(deviceId);
    if (!phone) throw new Error(`no virtual phone ${deviceId}`);

    // 1. first frame: the element vs the sfu's test viewer, alternating, a fresh page and session each.
    const element: number[] = [];
    const viewer: number[] = [];
    for (let i = 0; i < trials; i++) {
      const { page, firstFrameMs } = await playerPage(browser, server.origin, await session(stack, deviceId));
      element.push(firstFrameMs);
      await leave(page);
      await page.close();
      const v = await ViewerPage.open(browser);
      const s = await session(stack, deviceId);
      viewer.push(
        (await v.page.evaluate(
          `(async () => {
            const t0 = performance.now();
            cphoneViewer.start(${JSON.stringify({ url: s.sfuUrl, token: s.token })});
            await new Promise((r) => { const i = setInterval(() => { if (cphoneViewer.state.frames > 0) { clearInterval(i); r(); } }, 1); });
            return performance.now() - t0;
          })()`,
        )) as number,
      );
      await v.request('leave').catch(() => undefined);
      await v.close();
    }
    console.log(`first_frame (element): ${dist(element)}`);
    console.log(`first_frame (test viewer baseline): ${dist(viewer)}`);

    // 2. glass-to-glass and input, on one page.
    const { page } = await playerPage(browser, server.origin, await session(stack, deviceId));
    await new Promise((r) => setTimeout(r, glassS * 1000));
    const glass = (await page.evaluate('globalThis.__g2g')) as number[];
    console.log(`glass_to_glass (element, ${glassS} s): ${dist(glass)}`);

    await waitFor(
      'input open',
      () => page.evaluate(`document.querySelector('cphone-player').inputOpen`),
      Boolean,
    );
    await page.evaluate(`(() => {
      globalThis.__downs = [];
      document.querySelector('cphone-player').shadowRoot.querySelector('.screen')
        .addEventListener('pointerdown', (e) => globalThis.__downs.push(performance.timeOrigin + e.timeStamp), true);
    })()`);
    const arrived: number[] = [];
    phone.events.on('input', (e) => {
      if (e.kind === 'motion' && e.action === 'down')
        arrived.push(performance.timeOrigin + performance.now());
    });
    const box = await page.locator('cphone-player video').boundingBox();
    if (!box) throw new Error('no video box');
    for (let i = 0; i < taps; i++) {
      await page.mouse.click(box.x + box.width * (0.2 + (i % 5) * 0.15), box.y + box.height * 0.5);
      await waitFor(
        'the touch on the phone',
        async () => arrived.length,
        (n) => n > i,
        { intervalMs: 1 },
      );
    }
    const downs = (await page.evaluate('globalThis.__downs')) as number[];
    const input = arrived.map((at, i) => at - (downs[i] ?? Number.NaN)).filter(Number.isFinite);
    console.log(`input_to_device (pointerdown -> phone): ${dist(input)}`);
    await leave(page);

    const figures = {
      first_frame_p50_ms: Number(ms(percentile(element, 50))),
      glass_to_glass_p50_ms: Number(ms(percentile(glass, 50))),
      glass_to_glass_p99_ms: Number(ms(percentile(glass, 99))),
      input_to_device_p50_ms: Number(ms(percentile(input, 50))),
      baseline_test_viewer_first_frame_p50_ms: Number(ms(percentile(viewer, 50))),
      first_frame_vs_test_viewer: Number((percentile(element, 50) / percentile(viewer, 50)).toFixed(2)),
      input_to_device_p95_ms: Number(ms(percentile(input, 95))),
    };
    console.log(
      `targets: first frame <= ${TARGETS.firstFrameMs} ms, glass-to-glass p50 <= ${TARGETS.glassP50} ms, input p50 <= ${TARGETS.inputP50} ms`,
    );
    console.log(JSON.stringify(figures));
  } finally {
    await browser.close();
    server.close();
    await stack.close();
    await rm(fixtures, { recursive: true, force: true });
  }
}

await main();
