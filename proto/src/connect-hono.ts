// Serves Connect-RPC services from a Hono app, so one HTTP server carries the API, the web assets,
// health and metrics. connect-es ships adapters for Node, Express, Fastify and Next but not Hono;
// its fetch handler bridges the two.
import { type ConnectRouter, type ConnectRouterOptions, createConnectRouter } from '@connectrpc/connect';
import { createFetchHandler } from '@connectrpc/connect/protocol';
import type { Env, Hono } from 'hono';

export interface ConnectHonoOptions extends ConnectRouterOptions {
  /** Registers the services on the router. */
  routes: (router: ConnectRouter) => void;
}

/** Mounts every Connect route on the app; returns the paths it serves (for logs and tests). */
export function mountConnect<E extends Env>(app: Hono<E>, options: ConnectHonoOptions): string[] {
  const { routes, ...routerOptions } = options;
  const router = createConnectRouter(routerOptions);
  routes(router);
  const paths: string[] = [];
  for (const handler of router.handlers) {
    const fetchHandler = createFetchHandler(handler);
    app.on(handler.allowedMethods, handler.requestPath, (c) => fetchHandler(c.req.raw));
    paths.push(handler.requestPath);
  }
  return paths;
}
