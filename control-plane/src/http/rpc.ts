// Serves the Connect services on Node's own request and response objects, the way connect-node's
// connectNodeAdapter does, with one step added: the decode guard reads and checks each body before
// the router decodes it, which the adapter has no hook for. Everything that is not an RPC goes on
// to the fallback (the Hono app: health, metrics, artifacts).
//
// Measured against the earlier bridge (Connect's universal handlers under Hono through fetch
// Request/Response objects) with `npm run bench -- api` on the same machine: the fetch bridge
// turned every call into web streams and Request/Response objects on both sides, which cost more
// CPU than auth, the query and the handler together; Node's objects avoid all of it.

import type { ConnectRouter } from '@connectrpc/connect';
import { Code, ConnectError, type ConnectRouterOptions, createConnectRouter } from '@connectrpc/connect';
import type { UniversalServerResponse } from '@connectrpc/connect/protocol';
import { universalRequestFromNodeRequest, universalResponseToNodeResponse } from '@connectrpc/connect-node';
import type { DecodeGuard } from '../api/decode-guard.js';
import type { Logger } from '../logger.js';
import type { RequestListener } from './listen.js';

export interface RpcListenerOptions extends ConnectRouterOptions {
  /** Registers the services on the router. */
  routes: (router: ConnectRouter) => void;
  /** Checks each body before the router decodes it. */
  guard: DecodeGuard;
  /** Every request that names no RPC. */
  fallback: RequestListener;
  logger: Logger;
}

export function createRpcListener(options: RpcListenerOptions): {
  listener: RequestListener;
  paths: string[];
} {
  const { routes, guard, fallback, logger, ...routerOptions } = options;
  const router = createConnectRouter(routerOptions);
  routes(router);
  const handlers = new Map(router.handlers.map((h) => [h.requestPath, h]));
  const listener: RequestListener = (request, response) => {
    const url = request.url ?? '';
    const query = url.indexOf('?');
    const path = query < 0 ? url : url.slice(0, query);
    const handler = handlers.get(path);
    if (!handler) {
      fallback(request, response);
      return;
    }
    const answer = async () => {
      const admitted = await guard.admit(
        path,
        universalRequestFromNodeRequest(request, response, undefined, undefined),
      );
      const universal: UniversalServerResponse =
        'response' in admitted ? admitted.response : await handler(admitted.request);
      await universalResponseToNodeResponse(universal, response);
    };
    answer().catch((reason: unknown) => {
      // The client went away mid-call: there is no one left to answer.
      if (ConnectError.from(reason).code !== Code.Aborted) {
        logger.error(
          { err: reason, procedure: `${handler.service.typeName}/${handler.method.name}` },
          'rpc failed',
        );
      }
      if (!response.headersSent && !response.destroyed) {
        response.writeHead(500).end();
      } else if (!response.writableEnded) {
        response.destroy();
      }
    });
  };
  return { listener, paths: [...handlers.keys()] };
}
