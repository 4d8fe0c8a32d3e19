// A Connect transport to the public API that presents an API key (the embedded launcher, tests and
// benchmarks).
import type { Transport } from '@connectrpc/connect';
import { createConnectTransport } from '@connectrpc/connect-node';

/**
 * HTTP/1.1 to `baseUrl`, every call carrying `Bearer <token>`; without a token, anonymous calls.
 * `ca` (PEM) is the authority to trust for an https URL beside the system's.
 */
export function bearerTransport(
  baseUrl: string,
  token?: string,
  options: { ca?: string | undefined } = {},
): Transport {
  return createConnectTransport({
    baseUrl,
    httpVersion: '1.1',
    ...(options.ca ? { nodeOptions: { ca: options.ca } } : {}),
    interceptors: token
      ? [
          (next) => (req) => {
            req.header.set('authorization', `Bearer ${token}`);
            return next(req);
          },
        ]
      : [],
  });
}
