// Serves Connect-RPC services from a Hono app, so one HTTP server carries the API, the web assets,
// health and metrics. connect-es ships adapters for Node, Express, Fastify and Next but not Hono;
// its universal handlers bridge the two.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Http2ServerRequest, Http2ServerResponse } from 'node:http2';
import { type ConnectRouter, type ConnectRouterOptions, createConnectRouter } from '@connectrpc/connect';
import {
  type UniversalServerResponse,
  universalServerRequestFromFetch,
  universalServerResponseToFetch,
} from '@connectrpc/connect/protocol';
import { universalResponseToNodeResponse } from '@connectrpc/connect-node';
import { RESPONSE_ALREADY_SENT } from '@hono/node-server/utils/response';
import type { Context, Env, Hono } from 'hono';

export interface ConnectHonoOptions extends ConnectRouterOptions {
  /** Registers the services on the router. */
  routes: (router: ConnectRouter) => void;
}

/** What @hono/node-server puts in `c.env`: the Node request and response under the fetch ones. */
interface NodeBindings {
  incoming?: IncomingMessage | Http2ServerRequest;
  outgoing?: ServerResponse | Http2ServerResponse;
}

function nodeBindings(c: Context): NodeBindings {
  return (c.env ?? {}) as NodeBindings;
}

/**
 * Answers a call with Connect's response. A fetch Response has no trailers, and gRPC carries its
 * status in them, so under @hono/node-server a response with trailers is written to the Node
 * response directly (as connect-node's adapter writes it); Connect and gRPC-web carry theirs in
 * the body and go through Hono like any other response.
 */
export async function respondConnect(c: Context, response: UniversalServerResponse): Promise<Response> {
  const { outgoing } = nodeBindings(c);
  if (!outgoing || !response.trailer || [...response.trailer.keys()].length === 0) {
    return universalServerResponseToFetch(response);
  }
  try {
    await universalResponseToNodeResponse(response, outgoing);
  } catch {
    // The client went away mid-response; there is no one left to answer.
    if (!outgoing.destroyed) outgoing.destroy();
  }
  return RESPONSE_ALREADY_SENT;
}

/** Mounts every Connect route on the app; returns the paths it serves (for logs and tests). */
export function mountConnect<E extends Env>(app: Hono<E>, options: ConnectHonoOptions): string[] {
  const { routes, ...routerOptions } = options;
  const router = createConnectRouter(routerOptions);
  routes(router);
  const paths: string[] = [];
  for (const handler of router.handlers) {
    app.on(handler.allowedMethods, handler.requestPath, async (c) => {
      // The HTTP version lets Connect refuse bidi streams over HTTP/1.1 as it should.
      const httpVersion = nodeBindings(c).incoming?.httpVersion;
      const request = universalServerRequestFromFetch(c.req.raw, httpVersion ? { httpVersion } : {});
      return respondConnect(c, await handler(request));
    });
    paths.push(handler.requestPath);
  }
  return paths;
}
