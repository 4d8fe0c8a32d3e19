// An sfu on loopback for tests: an HTTP server on a free port with the signaling socket at
// /signal, fixture feeds, test tokens, and every session event kept.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { SfuOptions } from '../options.js';
import type { SessionEvent } from '../session.js';
import { createSfu, type Sfu } from '../sfu.js';
import { FixtureFeeds } from './fixture-feeds.js';
import { type TestTokens, testTokens } from './tokens.js';

export interface TestSfu {
  readonly sfu: Sfu;
  readonly server: Server;
  /** ws://127.0.0.1:<port>/signal */
  readonly url: string;
  readonly feeds: FixtureFeeds;
  readonly tokens: TestTokens;
  readonly events: SessionEvent[];
  close(): Promise<void>;
}

export async function startTestSfu(
  options: Partial<Omit<SfuOptions, 'feeds'>> & { feeds?: FixtureFeeds } = {},
): Promise<TestSfu> {
  const tokens = testTokens(options.now ? { now: options.now } : {});
  const feeds = options.feeds ?? new FixtureFeeds();
  const events: SessionEvent[] = [];
  const sfu = await createSfu({
    workers: 1,
    rtcPort: 0,
    verifyToken: tokens.verify,
    ...options,
    feeds,
    onSessionEvent: (event) => {
      events.push(event);
      options.onSessionEvent?.(event);
    },
  });
  const server = createServer((_req, res) => res.writeHead(404).end());
  server.on('upgrade', (req, socket, head) => {
    if (req.url?.startsWith('/signal')) sfu.handleUpgrade(req, socket, head);
    else socket.destroy();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    sfu,
    server,
    url: `ws://127.0.0.1:${port}/signal`,
    feeds,
    tokens,
    events,
    close: async () => {
      await sfu.close();
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}
