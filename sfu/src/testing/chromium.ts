// Headless Chromium (Debian's package) driving the test player in viewer-page/: one browser per
// test file, one page per viewer. The player is bundled with esbuild once per process and loaded
// into an empty page, so no web server is needed; it reaches the sfu over loopback only.
import { fileURLToPath } from 'node:url';
import { bundleForBrowser, launchChromium as launchDebianChromium } from '@cphone/proto/testing/browser';
import type { Browser, Page } from 'playwright-core';
import type { ViewerApi, ViewerStartOptions, ViewerState } from './viewer-page/viewer.js';

export type { ViewerStartOptions, ViewerState };

const ENTRY = fileURLToPath(new URL('./viewer-page/viewer.ts', import.meta.url));

let bundled: Promise<string> | undefined;

/** The player as one browser script (mediasoup-client included), bundled once per process. */
export function viewerBundle(): Promise<string> {
  bundled ??= bundleForBrowser(ENTRY);
  return bundled;
}

/** Debian's headless Chromium (the shared launcher), with autoplay on and plain loopback ICE candidates. */
export function launchChromium(): Promise<Browser> {
  return launchDebianChromium({
    args: [
      '--autoplay-policy=no-user-gesture-required',
      // Host candidates as plain loopback addresses, not mDNS names nothing here resolves.
      '--disable-features=WebRtcHideLocalIpsWithMdns',
    ],
  });
}

/** One player in its own page. */
export class ViewerPage {
  private constructor(readonly page: Page) {}

  /** In a browser, or in a context of one (e.g. one that trusts a test certificate). */
  static async open(browser: Pick<Browser, 'newPage'>): Promise<ViewerPage> {
    const page = await browser.newPage();
    await page.setContent('<!doctype html><html><body></body></html>');
    await page.addScriptTag({ content: await viewerBundle() });
    return new ViewerPage(page);
  }

  /** Joins and sets up media (and input for CONTROL); resolves with the join result. */
  start(options: ViewerStartOptions): Promise<Record<string, unknown>> {
    return this.page.evaluate((o) => cphoneViewer.start(o), options);
  }

  /** Starts without waiting: for joins that are meant to fail (the close shows in state()). */
  startQuietly(options: ViewerStartOptions): Promise<void> {
    return this.page.evaluate((o) => {
      cphoneViewer.start(o).catch((e: unknown) => cphoneViewer.state.errors.push(String(e)));
    }, options);
  }

  state(): Promise<ViewerState> {
    return this.page.evaluate(() => cphoneViewer.state);
  }

  received(): Promise<{ video: number; audio: number }> {
    return this.page.evaluate(() => cphoneViewer.received());
  }

  /** Candidate types of the selected ICE pair of the receive transport; undefined until one is. */
  selectedCandidates(): Promise<{ local: string; remote: string; localUrl?: string } | undefined> {
    return this.page.evaluate(() => cphoneViewer.selectedCandidates());
  }

  sendInput(message: unknown): Promise<void> {
    return this.page.evaluate((m) => cphoneViewer.sendInput(m), message);
  }

  request(type: string, fields: Record<string, unknown> = {}): Promise<Record<string, unknown>> {
    return this.page.evaluate(([t, f]) => cphoneViewer.request(t, f), [type, fields] as const);
  }

  drop(): Promise<void> {
    return this.page.evaluate(() => cphoneViewer.drop());
  }

  close(): Promise<void> {
    return this.page.close();
  }
}

// The player's global, referenced only inside functions that run in the page.
declare const cphoneViewer: ViewerApi;
