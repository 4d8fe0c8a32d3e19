// Serves the Connect services on Node's own request and response objects, the way connect-node's
// connectNodeAdapter does, with two differences:
// - the decode guard reads and checks each body before the router decodes it, which the adapter
//   has no hook for;
// - the request's abort signal fires only when the client goes away before its answer is
//   written. connect-node's universalRequestFromNodeRequest aborts its signal on every response
//   close, finished or not, and each abort without a reason builds a DOMException with a stack:
//   one per call on the success path, beside the one Connect's handler makes itself when it aborts
//   the call's context at the end.
// Everything that is not an RPC goes on to the fallback (the Hono app: health, metrics, artifacts).
//
// Measured against the earlier bridge (Connect's universal handlers under Hono through fetch
// Request/Response objects) with `npm run bench -- api`: see the control plane's README,
// Benchmarks. The fetch bridge turned every call into web streams and Request/Response objects on
// both sides; Node's objects avoid all of it.
import type { IncomingMessage } from 'node:http';
import type { Http2ServerRequest } from 'node:http2';
import {
  Code,
  ConnectError,
  type ConnectRouter,
  type ConnectRouterOptions,
  createConnectRouter,
} from '@connectrpc/connect';
import type { UniversalServerRequest, UniversalServerResponse } from '@connectrpc/connect/protocol';
import { universalResponseToNodeResponse } from '@connectrpc/connect-node';
import type { DecodeGuard } from '../api/decode-guard.js';
import type { Logger } from '../logger.js';
import { CLIENT_ADDRESS_HEADER } from '../users/sessions.js';
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

type NodeRequest = IncomingMessage | Http2ServerRequest;
type NodeResponse = Parameters<RequestListener>[1];

/**
 * Node's headers as fetch Headers, without HTTP/2's pseudo-headers, plus the socket's remote
 * address in CLIENT_ADDRESS_HEADER (sign-in throttling and sessions read it there: the router sees
 * only this universal request). A client's own header of that name is dropped, never trusted.
 */
function headersOf(request: NodeRequest): Headers {
  const header = new Headers();
  for (const [name, value] of Object.entries(request.headers)) {
    if (value === undefined || name.startsWith(':') || name === CLIENT_ADDRESS_HEADER) continue;
    if (Array.isArray(value)) for (const v of value) header.append(name, v);
    else header.append(name, String(value));
  }
  const address = request.socket.remoteAddress;
  if (address) header.set(CLIENT_ADDRESS_HEADER, address);
  return header;
}

function universalRequest(
  request: NodeRequest,
  response: NodeResponse,
  path: string,
): UniversalServerRequest {
  const controller = new AbortController();
  // 'close' comes after the last byte is handed on, or when the connection or stream ends early.
  response.once('close', () => {
    if (!response.writableFinished) controller.abort(new ConnectError('the client went away', Code.Canceled));
  });
  const encrypted = 'encrypted' in request.socket && request.socket.encrypted === true;
  const authority = 'authority' in request ? request.authority : request.headers.host;
  return {
    httpVersion: request.httpVersion,
    method: request.method ?? '',
    url: `${encrypted ? 'https' : 'http'}://${authority ?? 'localhost'}${request.url ?? path}`,
    header: headersOf(request),
    body: request as AsyncIterable<Uint8Array>,
    signal: controller.signal,
  };
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
      const admitted = await guard.admit(path, universalRequest(request, response, path));
      const universal: UniversalServerResponse =
        'response' in admitted ? admitted.response : await handler(admitted.request);
      await universalResponseToNodeResponse(universal, response);
    };
    answer().catch((reason: unknown) => {
      // The client went away mid-call: there is no one left to answer.
      const code = ConnectError.from(reason).code;
      if (code !== Code.Aborted && code !== Code.Canceled) {
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
