// Who a call comes from: the Bearer API key if there is one (cookie or not), else the session
// cookie, which must also pass the browser checks (Origin, CSRF header); the two public calls
// need neither.
import type { Kysely } from 'kysely';
import { authenticate } from '../auth/api-keys.js';
import type { AuthCache } from '../auth/auth-cache.js';
import type { Principal } from '../auth/principal.js';
import type { ControlPlaneConfig } from '../config.js';
import { PermissionDeniedError } from '../errors.js';
import type { Logger } from '../logger.js';
import type { Database } from '../store/schema.js';
import { authenticateSession, CSRF_HEADER, csrfMatches, sessionCookie } from '../users/sessions.js';

/** Calls that change nothing: no CSRF header needed (interceptors.ts audits the others). */
export const READ_ONLY = /^(Get|List|Explain|Query|Export|Download)/;

/** The calls that need no authentication: they are how a browser gets a session. */
const PUBLIC = new Set(['cphone.api.v1.UserService/SignIn', 'cphone.api.v1.UserService/AcceptInvitation']);

export interface CallerDeps {
  db: Kysely<Database>;
  config: Pick<ControlPlaneConfig, 'publicUrl' | 'sessionIdleTimeoutMs' | 'sessionLifetimeMs'>;
  authCache?: AuthCache | undefined;
}

interface Call {
  service: { typeName: string };
  method: { name: string };
  url: string;
  header: Headers;
}

/**
 * A browser call is refused when its Origin is another site's: the server's own origin is the one
 * the request was addressed to, or the configured public URL's (behind a proxy).
 */
function checkOrigin(call: Call, publicUrl: string): void {
  const origin = call.header.get('origin');
  if (origin === null) return;
  const own = [new URL(call.url).origin, URL.canParse(publicUrl) ? new URL(publicUrl).origin : ''];
  if (!own.includes(origin)) {
    throw new PermissionDeniedError(`cross-origin call from ${JSON.stringify(origin.slice(0, 200))} refused`);
  }
}

/** The principal of the call, undefined only for a public call made without an API key. */
export async function callerOf(
  deps: CallerDeps,
  call: Call,
  options: { now: Date; logger: Logger },
): Promise<Principal | undefined> {
  const bearer = (call.header.get('authorization') ?? '').replace(/^Bearer\s+/i, '');
  const cookie = sessionCookie(call.header.get('cookie'));
  const procedure = `${call.service.typeName}/${call.method.name}`;
  if (PUBLIC.has(procedure) && !bearer) {
    checkOrigin(call, deps.config.publicUrl);
    return undefined;
  }
  if (bearer || !cookie) {
    return authenticate(deps.db, bearer || undefined, { ...options, cache: deps.authCache });
  }
  checkOrigin(call, deps.config.publicUrl);
  const session = await authenticateSession(deps.db, cookie, options.now, {
    idleTimeoutMs: deps.config.sessionIdleTimeoutMs,
    lifetimeMs: deps.config.sessionLifetimeMs,
  });
  if (!READ_ONLY.test(call.method.name) && !csrfMatches(session.csrfToken, call.header.get(CSRF_HEADER))) {
    throw new PermissionDeniedError(`missing or wrong ${CSRF_HEADER} header`);
  }
  return session.principal;
}
