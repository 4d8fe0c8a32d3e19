import type { ConnectRouter, Interceptor } from '@connectrpc/connect';
import { getRequestListener } from '@hono/node-server';
import { Hono } from 'hono';
import { createDecodeGuard } from '../api/decode-guard.js';
import type { Logger } from '../logger.js';
import type { Metrics } from '../metrics.js';
import type { RequestListener } from './listen.js';
import { createRpcListener } from './rpc.js';

export interface HttpAppOptions {
  logger: Logger;
  metrics: Metrics;
  /** Whether the process can serve traffic (database reachable, migrations done). */
  ready: () => Promise<boolean>;
  /** Registers the Connect services. */
  routes: (router: ConnectRouter) => void;
  interceptors?: Interceptor[];
  /** Extra plain HTTP routes (artifact download for agents, later the web player). */
  extend?: (app: Hono) => void;
}

export interface HttpApp {
  /** The Node request listener for every request: RPCs first, the rest through `app`. */
  listener: RequestListener;
  /** Health, readiness, metrics and the extra routes. */
  app: Hono;
  /** The RPC paths served (for logs and tests). */
  rpcPaths: string[];
}

// Bodies above 16 MiB are refused; artifacts travel in chunks (ArtifactService.UploadChunk).
const RPC_READ_MAX_BYTES = 16 * 1024 * 1024;

/** One HTTP surface: the Connect-RPC API, health, readiness and metrics. */
export function createHttpApp(options: HttpAppOptions): HttpApp {
  const app = new Hono();
  app.get('/healthz', (c) => c.json({ status: 'ok' }));
  app.get('/readyz', async (c) => {
    const ready = await options.ready().catch(() => false);
    return c.json({ status: ready ? 'ready' : 'not ready' }, ready ? 200 : 503);
  });
  app.get('/metrics', async (c) => {
    const body = await options.metrics.registry.metrics();
    return c.text(body, 200, { 'content-type': options.metrics.registry.contentType });
  });
  options.extend?.(app);
  app.notFound((c) => c.json({ error: `no route for ${c.req.method} ${c.req.path}` }, 404));
  app.onError((error, c) => {
    options.logger.error({ err: error, path: c.req.path }, 'http handler failed');
    return c.json({ error: 'internal error' }, 500);
  });
  const interceptors = options.interceptors ?? [];
  // Ahead of the RPC handlers: bodies Connect would fail to decode are refused as INVALID_ARGUMENT.
  const guard = createDecodeGuard({ interceptors, readMaxBytes: RPC_READ_MAX_BYTES });
  const { listener, paths } = createRpcListener({
    routes: (router) => {
      options.routes(router);
      guard.cover(router);
    },
    interceptors,
    readMaxBytes: RPC_READ_MAX_BYTES,
    guard,
    fallback: getRequestListener(app.fetch),
    logger: options.logger,
  });
  return { listener, app, rpcPaths: paths };
}
