import type { ConnectRouter, Interceptor } from '@connectrpc/connect';
import { mountConnect } from '@cphone/proto';
import { Hono } from 'hono';
import { createDecodeGuard } from '../api/decode-guard.js';
import type { Logger } from '../logger.js';
import type { Metrics } from '../metrics.js';

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

// Bodies above 16 MiB are refused; artifacts travel in chunks (ArtifactService.UploadChunk).
const RPC_READ_MAX_BYTES = 16 * 1024 * 1024;

/** One HTTP app: the Connect-RPC API, health, readiness and metrics. */
export function createHttpApp(options: HttpAppOptions): { app: Hono; rpcPaths: string[] } {
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
  const interceptors = options.interceptors ?? [];
  // Ahead of the RPC routes: bodies Connect would fail to decode are refused as INVALID_ARGUMENT.
  const guard = createDecodeGuard({ interceptors, readMaxBytes: RPC_READ_MAX_BYTES });
  app.use(guard.middleware);
  const rpcPaths = mountConnect(app, {
    routes: (router) => {
      options.routes(router);
      guard.cover(router);
    },
    interceptors,
    readMaxBytes: RPC_READ_MAX_BYTES,
  });
  app.notFound((c) => c.json({ error: `no route for ${c.req.method} ${c.req.path}` }, 404));
  app.onError((error, c) => {
    options.logger.error({ err: error, path: c.req.path }, 'http handler failed');
    return c.json({ error: 'internal error' }, 500);
  });
  return { app, rpcPaths };
}
