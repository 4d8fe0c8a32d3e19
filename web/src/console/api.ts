// The console's side of the public API: the same Connect services resellers call, over fetch on
// the console's own origin. The session is an HttpOnly cookie the browser sends by itself; every
// call also carries the session's CSRF token (x-cphone-csrf), which the control plane requires on
// every state-changing call made with a cookie.
import { type Client, Code, ConnectError, createClient, type Interceptor } from '@connectrpc/connect';
import { createConnectTransport } from '@connectrpc/connect-web';
import {
  ApiKeyService,
  ArtifactService,
  AuditService,
  DeviceService,
  RetryInfoSchema,
  TenantService,
  UsageService,
  UserService,
} from '@cphone/proto/api';
import type { MessageKey } from './messages.js';

let csrfToken = '';

/** Kept from SignIn / GetCurrentUser; sent on every call. */
export function setCsrfToken(token: string): void {
  csrfToken = token;
}

const csrf: Interceptor = (next) => (req) => {
  if (csrfToken) req.header.set('x-cphone-csrf', csrfToken);
  return next(req);
};

/** Called when a call answers UNAUTHENTICATED outside sign-in: the session is gone. */
let onSignedOut: () => void = () => {};
export function whenSignedOut(callback: () => void): void {
  onSignedOut = callback;
}

const signedOut: Interceptor = (next) => async (req) => {
  try {
    return await next(req);
  } catch (error) {
    const e = ConnectError.from(error);
    const signingIn = req.method.name === 'SignIn' || req.method.name === 'AcceptInvitation';
    if (e.code === Code.Unauthenticated && !signingIn && req.method.name !== 'GetCurrentUser') onSignedOut();
    throw error;
  }
};

/**
 * Where the API answers: the console's own origin, unless the page names another base in
 * `<meta name="cphone-api-base">` (a reverse proxy that serves the API under a path).
 */
function apiBase(): string {
  const meta = document.querySelector<HTMLMetaElement>('meta[name="cphone-api-base"]')?.content;
  return meta || location.origin;
}

const transport = createConnectTransport({
  baseUrl: apiBase(),
  interceptors: [csrf, signedOut],
  fetch: (input, init) => fetch(input, { ...init, credentials: 'same-origin' }),
});

export interface Api {
  users: Client<typeof UserService>;
  devices: Client<typeof DeviceService>;
  artifacts: Client<typeof ArtifactService>;
  keys: Client<typeof ApiKeyService>;
  tenants: Client<typeof TenantService>;
  usage: Client<typeof UsageService>;
  audit: Client<typeof AuditService>;
}

export const api: Api = {
  users: createClient(UserService, transport),
  devices: createClient(DeviceService, transport),
  artifacts: createClient(ArtifactService, transport),
  keys: createClient(ApiKeyService, transport),
  tenants: createClient(TenantService, transport),
  usage: createClient(UsageService, transport),
  audit: createClient(AuditService, transport),
};

/** The wait a throttled call names (google.rpc.RetryInfo), whole seconds rounded up. */
function retrySeconds(error: ConnectError): number | undefined {
  const delay = error.findDetails(RetryInfoSchema)[0]?.retryDelay;
  return delay ? Number(delay.seconds) + (delay.nanos > 0 ? 1 : 0) : undefined;
}

export interface Problem {
  key: MessageKey;
  params: Record<string, string | number>;
  requestId: string | undefined;
  code: Code | undefined;
}

/** An API error in words a customer understands, with the request id to quote. */
export function problemOf(error: unknown, during?: 'sign-in'): Problem {
  const e = ConnectError.from(error);
  const requestId = e.metadata.get('x-request-id') ?? undefined;
  const detail = e.rawMessage;
  const at = (key: MessageKey, params: Record<string, string | number> = {}): Problem => ({
    key,
    params,
    requestId,
    code: e.code,
  });
  switch (e.code) {
    case Code.Unauthenticated:
      return at(during === 'sign-in' ? 'error.wrongPassword' : 'error.unauthenticated');
    case Code.ResourceExhausted: {
      const seconds = retrySeconds(e);
      return seconds !== undefined ? at('error.throttled', { seconds }) : at('error.exhausted', { detail });
    }
    case Code.PermissionDenied:
      return at('error.permission');
    case Code.NotFound:
      return at('error.notFound');
    case Code.InvalidArgument:
    case Code.OutOfRange:
      return at('error.invalid', { detail });
    case Code.FailedPrecondition:
    case Code.Aborted:
      return at('error.precondition', { detail });
    case Code.AlreadyExists:
      return at('error.conflict', { detail });
    case Code.Unavailable:
      return at('error.unavailable');
    case Code.DeadlineExceeded:
      return at('error.timeout');
    case Code.Internal:
    case Code.Unknown:
    case Code.DataLoss:
      return at('error.internal');
    default:
      return at('error.generic', { detail });
  }
}
