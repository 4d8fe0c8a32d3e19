// Test support for tests that need a real browser (`@cphone/proto/testing/browser`; see testing.ts
// for why test support lives in this package). The browser is Debian's Chromium driven by
// playwright-core: a downloaded browser (`npx playwright install`) cannot be fetched on the project's
// machines, and scripts/setup-system.sh installs the `chromium` package. Launch one browser per test
// file, since a launch costs far more than a page:
//
//   let browser: Browser;
//   before(async () => { browser = await launchChromium(); });
//   after(() => browser.close());
import { existsSync } from 'node:fs';
import { build } from 'esbuild';
import { type Browser, chromium } from 'playwright-core';

/** Where Debian's `chromium` package puts the browser. */
export const CHROMIUM_PATH = '/usr/bin/chromium';

const CHROMIUM_ARGS = [
  '--headless=new',
  // Chromium refuses its sandbox when run as root, which CI does.
  '--no-sandbox',
  '--disable-gpu',
  // No update checks, field-trial or safe-browsing fetches: the machines are offline.
  '--disable-background-networking',
  // Containers often have a tiny /dev/shm.
  '--disable-dev-shm-usage',
  // WebRTC leaves out loopback addresses unless told otherwise; test peers listen on 127.0.0.1.
  '--allow-loopback-in-peer-connection',
];

export interface LaunchChromiumOptions {
  /** Command-line switches added to the defaults above. */
  args?: readonly string[];
}

/** Launches Debian's headless Chromium; the caller closes it. */
export async function launchChromium({ args = [] }: LaunchChromiumOptions = {}): Promise<Browser> {
  if (!existsSync(CHROMIUM_PATH)) {
    throw new Error(`${CHROMIUM_PATH} is missing: bash scripts/setup-system.sh installs Debian's chromium`);
  }
  return chromium.launch({ executablePath: CHROMIUM_PATH, args: [...CHROMIUM_ARGS, ...args] });
}

/**
 * Bundles a page script and the npm packages it imports into one classic script, ready for
 * `page.addScriptTag({ content })`.
 */
export async function bundleForBrowser(entry: string): Promise<string> {
  const result = await build({
    entryPoints: [entry],
    bundle: true,
    write: false,
    format: 'iife',
    platform: 'browser',
    target: 'chrome120',
    logLevel: 'silent',
  });
  const [output] = result.outputFiles;
  if (!output) throw new Error(`esbuild produced nothing for ${entry}`);
  return output.text;
}
