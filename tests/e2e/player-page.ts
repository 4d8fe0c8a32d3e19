/// <reference lib="dom" />
// The <cphone-player> element in Chromium, as a reseller's page embeds it: a tiny web server on
// another origin than the sfu (127.0.0.1, port 0) serves the built script (playerBundle) and a page
// that includes it with <script src>; tests drive the element through its public API and events.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { playerBundle } from '@cphone/web/player-bundle';
import type { BrowserContext, Page } from 'playwright-core';

export interface EmbedServer {
  readonly origin: string;
  close(): Promise<void>;
}

const escapeHtml = (s: string) => s.replace(/[&<>"]/g, (c) => `&#${c.charCodeAt(0)};`);

/**
 * `/` is an empty page with the script; `/embed?token=…&sfu-url=…&…` is a page whose markup holds
 * one element with those attributes (what a reseller's server would render).
 */
export async function startEmbedServer(): Promise<EmbedServer> {
  const script = await playerBundle();
  const server: Server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://x');
    if (url.pathname === '/cphone-player.js') {
      res.writeHead(200, { 'content-type': 'text/javascript; charset=utf-8' }).end(script);
      return;
    }
    const attrs = [...url.searchParams].map(([k, v]) => `${escapeHtml(k)}="${escapeHtml(v)}"`).join(' ');
    const element = url.pathname === '/embed' ? `<cphone-player ${attrs}></cphone-player>` : '';
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' }).end(
      `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>reseller page</title>
<style>body{margin:0;background:#222} cphone-player{width:360px;height:700px}</style>
<script src="/cphone-player.js"></script></head><body>${element}</body></html>`,
    );
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    origin: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

export interface PlayerSnapshot {
  state: string;
  text: string;
  firstFrameMs: number | undefined;
  size: { width: number; height: number };
  inputOpen: boolean;
  frames: number;
  events: { type: string; detail: unknown }[];
}

/** Collects the element's events on window.__events. */
const RECORD = () => {
  const w = window as unknown as { __events: { type: string; detail: unknown }[] };
  w.__events = [];
  for (const type of [
    'cphone-state',
    'cphone-first-frame',
    'cphone-video-size',
    'cphone-clipboard',
    'cphone-input',
    'cphone-error',
  ]) {
    document.addEventListener(type, (e) => w.__events.push({ type, detail: (e as CustomEvent).detail }));
  }
};

export class PlayerPage {
  private constructor(readonly page: Page) {}

  /** The page of `server` at `path`, its element's events recorded. */
  static async open(context: BrowserContext, server: EmbedServer, path = '/'): Promise<PlayerPage> {
    const page = await context.newPage();
    await page.addInitScript(RECORD);
    // Not 'load': a <video> delays the load event until it has data, which a refused join never gives.
    await page.goto(`${server.origin}${path}`, { waitUntil: 'domcontentloaded' });
    return new PlayerPage(page);
  }

  /** Adds an element with these attributes and session (and a tokenProvider fed by `provide`). */
  async add(
    attrs: Record<string, string>,
    session?: { sfuUrl: string; token: string },
    style = 'width:360px;height:700px',
  ): Promise<void> {
    await this.page.evaluate(
      ([a, s, css]) => {
        const el = document.createElement('cphone-player') as HTMLElement & { session?: unknown };
        for (const [k, v] of Object.entries(a)) el.setAttribute(k, v);
        el.setAttribute('style', css);
        if (s) el.session = s;
        document.body.append(el);
      },
      [attrs, session, style] as const,
    );
  }

  snapshot(): Promise<PlayerSnapshot> {
    return this.page.evaluate(() => {
      const p = document.querySelector('cphone-player') as unknown as {
        state: string;
        statusText: string;
        firstFrameMs: number | undefined;
        videoSize: { width: number; height: number };
        inputOpen: boolean;
        framesPresented: number;
      };
      const w = window as unknown as { __events: { type: string; detail: unknown }[] };
      return {
        state: p.state,
        text: p.statusText,
        firstFrameMs: p.firstFrameMs,
        size: p.videoSize,
        inputOpen: p.inputOpen,
        frames: p.framesPresented,
        events: w.__events,
      };
    });
  }

  /** The displayed picture's rectangle on the page (inside the letterbox). */
  shownRect(): Promise<{ left: number; top: number; width: number; height: number }> {
    return this.page.evaluate(() => {
      const video = document.querySelector('cphone-player')?.shadowRoot?.querySelector('video');
      if (!video) throw new Error('no video');
      const box = video.getBoundingClientRect();
      const scale = Math.min(box.width / video.videoWidth, box.height / video.videoHeight);
      const width = video.videoWidth * scale;
      const height = video.videoHeight * scale;
      return {
        left: box.left + (box.width - width) / 2,
        top: box.top + (box.height - height) / 2,
        width,
        height,
      };
    });
  }

  close(): Promise<void> {
    return this.page.close();
  }
}
