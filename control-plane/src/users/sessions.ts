// Web sessions: an opaque random value in the cookie `cphone_session`, only its sha256 stored. No
// answer is cached: every call reads the session row, so a sign-out or revocation holds at once
// on every replica.
import { timingSafeEqual } from 'node:crypto';
import { parse, serialize } from 'hono/utils/cookie';
import type { Kysely, Selectable } from 'kysely';
import { effectiveRole, hashSecret, suspendedOnPath, tenantSubtree } from '../auth/api-keys.js';
import type { Principal } from '../auth/principal.js';
import { UnauthenticatedError } from '../errors.js';
import { newId, newSecret } from '../ids.js';
import type { Database, WebSessionTable } from '../store/schema.js';

export const SESSION_COOKIE = 'cphone_session';
export const CSRF_HEADER = 'x-cphone-csrf';
/** Set by the HTTP server from the socket (http/rpc.ts); a client's own is dropped. */
export const CLIENT_ADDRESS_HEADER = 'x-cphone-client-address';

/** How stale a session's recorded last use may get before a call rewrites it. */
export const SESSION_TOUCH_MS = 60_000;
const MAX_USER_AGENT_CHARS = 256;
// Far above a cookie value as minted; longer ones are refused before any query.
const MAX_COOKIE_CHARS = 128;

export interface SessionTimes {
  readonly idleTimeoutMs: number;
  readonly lifetimeMs: number;
}

/** The cookie's value from a Cookie header, if any. */
export function sessionCookie(header: string | null): string | undefined {
  if (!header) return undefined;
  return parse(header, SESSION_COOKIE)[SESSION_COOKIE] || undefined;
}

/** Set-Cookie for a new session (`value`) or, with no value, one that clears it. */
export function setCookie(value: string | undefined, secure: boolean): string {
  return serialize(SESSION_COOKIE, value ?? '', {
    path: '/',
    httpOnly: true,
    sameSite: 'Strict',
    secure,
    ...(value === undefined ? { maxAge: 0 } : {}),
  });
}

/** When the session ends at the latest, given its recorded last use. */
export function sessionEnd(
  row: Pick<Selectable<WebSessionTable>, 'last_seen_time' | 'expire_time'>,
  idleMs: number,
): Date {
  return new Date(Math.min(row.last_seen_time.getTime() + idleMs, row.expire_time.getTime()));
}

export interface NewSession {
  userId: string;
  tenantId: string;
  userAgent: string;
  clientAddress: string;
}

/** Creates a session; the cookie value is returned once and never stored. */
export async function createSession(
  db: Kysely<Database>,
  input: NewSession,
  now: Date,
  times: SessionTimes,
): Promise<{ row: Selectable<WebSessionTable>; cookie: string }> {
  const cookie = newSecret('cps');
  const row = await db
    .insertInto('web_session')
    .values({
      id: newId('ses'),
      user_id: input.userId,
      tenant_id: input.tenantId,
      token_hash: hashSecret(cookie),
      csrf_token: newSecret('csrf'),
      create_time: now,
      last_seen_time: now,
      expire_time: new Date(now.getTime() + times.lifetimeMs),
      user_agent: input.userAgent.slice(0, MAX_USER_AGENT_CHARS),
      client_address: input.clientAddress,
    })
    .returningAll()
    .executeTakeFirstOrThrow();
  return { row, cookie };
}

export interface SessionAuth {
  readonly principal: Principal;
  readonly csrfToken: string;
}

/**
 * Resolves a session cookie to its user's principal, or throws UNAUTHENTICATED without saying which
 * part failed. A use a minute after the recorded one moves the idle deadline on.
 */
export async function authenticateSession(
  db: Kysely<Database>,
  cookie: string,
  now: Date,
  times: SessionTimes,
): Promise<SessionAuth> {
  const refused = () => new UnauthenticatedError('missing, unknown, expired or ended session');
  if (cookie.length > MAX_COOKIE_CHARS) throw refused();
  const row = await db
    .selectFrom('web_session')
    .innerJoin('web_user', 'web_user.id', 'web_session.user_id')
    .innerJoin('tenant', 'tenant.id', 'web_user.tenant_id')
    .select([
      'web_session.id',
      'web_session.token_hash',
      'web_session.csrf_token',
      'web_session.last_seen_time',
      'web_session.expire_time',
      'web_session.revoke_time',
      'web_user.id as user_id',
      'web_user.tenant_id',
      'web_user.role',
      'tenant.kind as tenant_kind',
    ])
    .where('web_session.token_hash', '=', hashSecret(cookie))
    .executeTakeFirst();
  if (!row || row.revoke_time || now >= sessionEnd(row, times.idleTimeoutMs)) throw refused();
  if (await suspendedOnPath(db, row.tenant_id)) throw refused();
  const visibleTenants = await tenantSubtree(db, row.tenant_id);
  if (visibleTenants.length === 0) throw refused();
  if (now.getTime() - row.last_seen_time.getTime() >= SESSION_TOUCH_MS) {
    // Conditional, so concurrent calls write once and a late write never moves it backwards.
    await db
      .updateTable('web_session')
      .set({ last_seen_time: now })
      .where('id', '=', row.id)
      .where('last_seen_time', '<', now)
      .execute();
  }
  const principal: Principal = Object.freeze({
    actor: row.user_id,
    user: Object.freeze({ userId: row.user_id, sessionId: row.id }),
    tenantId: row.tenant_id,
    role: effectiveRole(row.role, row.tenant_kind),
    visibleTenants: Object.freeze(visibleTenants),
  });
  return { principal, csrfToken: row.csrf_token };
}

/** True when the presented CSRF token is the session's. */
export function csrfMatches(expected: string, presented: string | null): boolean {
  if (!presented) return false;
  const a = Buffer.from(expected);
  const b = Buffer.from(presented);
  return a.length === b.length && timingSafeEqual(a, b);
}

/** Ends sessions at once (each call reads the row, so no replica keeps them). */
export async function revokeSessions(
  db: Kysely<Database>,
  where: { userId: string; sessionId?: string; exceptSessionId?: string },
  now: Date,
): Promise<void> {
  let query = db
    .updateTable('web_session')
    .set({ revoke_time: now })
    .where('user_id', '=', where.userId)
    .where('revoke_time', 'is', null);
  if (where.sessionId) query = query.where('id', '=', where.sessionId);
  if (where.exceptSessionId) query = query.where('id', '!=', where.exceptSessionId);
  await query.execute();
}
