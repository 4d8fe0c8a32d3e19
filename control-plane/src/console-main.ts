// The web console's own server (the console image, deploy/images/console.Containerfile): the
// static build from CPHONE_CONSOLE_DIR with the same content security policy and caching as the
// control plane's embedded console (http/console.ts), and /healthz. It holds no API: the console
// calls the API on its page's origin, so the ingress in front sends /cphone.* to the control plane.
// `--version` prints the version and commit and exits.

import { exitIfVersionFlag } from '@cphone/proto/version';
import { serve } from '@hono/node-server';
import { Hono } from 'hono';
import { loadConsoleServerConfig } from './config.js';
import { mountConsole } from './http/console.js';
import { createLogger } from './logger.js';

exitIfVersionFlag('cphone-console');
const config = loadConsoleServerConfig();
const logger = createLogger(config.logLevel).child({ module: 'console-server' });
const app = new Hono();
app.get('/healthz', (c) => c.json({ status: 'ok' }));
mountConsole(app, config.consoleDir);
app.notFound((c) => c.json({ error: `no route for ${c.req.method} ${c.req.path}` }, 404));

const server = serve({ fetch: app.fetch, hostname: config.httpHost, port: config.httpPort }, (info) =>
  logger.info(
    { address: info.address, port: info.port, consoleDir: config.consoleDir },
    'serving the console',
  ),
);
for (const signal of ['SIGTERM', 'SIGINT'] as const) {
  process.on(signal, () => {
    logger.info({ signal }, 'shutting down');
    server.close(() => process.exit(0));
    setTimeout(() => process.exit(0), 5000).unref();
  });
}
