import { Code, ConnectError, type HandlerContext } from '@connectrpc/connect';
import { RetryInfoSchema } from '@cphone/proto';
import type { Kysely, Selectable } from 'kysely';
import { principalKey, principalOf } from '../api/context.js';
import { ts } from '../api/convert.js';
import { validDisplayName } from '../api/display-name.js';
import { hashSecret, suspendedOnPath } from '../auth/api-keys.js';
import type { Principal } from '../auth/principal.js';
import type { Clock } from '../clock.js';
import type { ControlPlaneConfig } from '../config.js';
import { AlreadyExistsError, NotFoundError, PermissionDeniedError, UnauthenticatedError } from '../errors.js';
import { newId } from '../ids.js';
import type { Logger } from '../logger.js';
import type { Metrics } from '../metrics.js';
import type { Database, WebSessionTable, WebUserTable } from '../store/schema.js';
import { hashPassword, MAX_PASSWORD_CHARS, normalEmail, validPassword, verifyPassword } from './passwords.js';
import {
  CLIENT_ADDRESS_HEADER,
  createSession,
  revokeSessions,
  type SessionTimes,
  setCookie,
} from './sessions.js';
import { clearAccountFailures, recordFailure, signInWait } from './throttle.js';
import { loadUser, userToProto } from './users.js';

export interface UserServiceDeps {
  db: Kysely<Database>;
  config: ControlPlaneConfig;
  clock: Clock;
  metrics: Metrics;
  logger: Logger;
}

const WRONG = 'wrong email or password';

function times(config: ControlPlaneConfig): SessionTimes {
  return { idleTimeoutMs: config.sessionIdleTimeoutMs, lifetimeMs: config.sessionLifetimeMs };
}

/** Secure unless the server is plain HTTP to its users (the embedded default on loopback). */
function secureCookie(config: ControlPlaneConfig, context: HandlerContext): boolean {
  return config.publicUrl.startsWith('https:') || context.url.startsWith('https:');
}

export function clientAddress(context: HandlerContext): string {
  return context.requestHeader.get(CLIENT_ADDRESS_HEADER) ?? '';
}

/** The caller's own session; an API key has none. */
function sessionOf(principal: Principal) {
  if (!principal.user) throw new UnauthenticatedError('this call needs a signed-in session, not an API key');
  return principal.user;
}

/** Creates the session, sets its cookie, and answers as SignIn does. */
async function signedIn(
  deps: UserServiceDeps,
  db: Kysely<Database>,
  user: Selectable<WebUserTable>,
  context: HandlerContext,
) {
  const now = deps.clock.now();
  const { row, cookie } = await createSession(
    db,
    {
      userId: user.id,
      tenantId: user.tenant_id,
      userAgent: context.requestHeader.get('user-agent') ?? '',
      clientAddress: clientAddress(context),
    },
    now,
    times(deps.config),
  );
  const updated = await db
    .updateTable('web_user')
    .set({ last_sign_in_time: now })
    .where('id', '=', user.id)
    .returningAll()
    .executeTakeFirstOrThrow();
  return { session: row, cookie, user: updated };
}

function answerSignIn(
  deps: UserServiceDeps,
  context: HandlerContext,
  done: { session: Selectable<WebSessionTable>; cookie: string; user: Selectable<WebUserTable> },
) {
  context.responseHeader.append('set-cookie', setCookie(done.cookie, secureCookie(deps.config, context)));
  // For the audit row: the call was made by the user it signed in.
  context.values.set(principalKey, {
    actor: done.user.id,
    user: { userId: done.user.id, sessionId: done.session.id },
    tenantId: done.user.tenant_id,
    role: done.user.role,
    visibleTenants: [done.user.tenant_id],
  });
  deps.metrics.signIns.inc({ outcome: 'ok' });
  return {
    user: userToProto(done.user),
    csrfToken: done.session.csrf_token,
    expireTime: ts(done.session.expire_time),
  };
}

function throttled(waitMs: number): ConnectError {
  const seconds = Math.ceil(waitMs / 1000);
  return new ConnectError(
    `too many failed sign-ins; retry in ${seconds} seconds`,
    Code.ResourceExhausted,
    undefined,
    [{ desc: RetryInfoSchema, value: { retryDelay: { seconds: BigInt(seconds), nanos: 0 } } }],
  );
}

export async function signIn(
  deps: UserServiceDeps,
  req: { email: string; password: string },
  context: HandlerContext,
) {
  const log = deps.logger.child({ module: 'users' });
  const now = deps.clock.now();
  const attempt = { email: normalEmail(req.email).slice(0, 254), address: clientAddress(context) };
  const limits = {
    windowMs: deps.config.signInWindowMs,
    maxPerAccount: deps.config.signInMaxFailuresPerAccount,
    maxPerAddress: deps.config.signInMaxFailuresPerAddress,
  };
  const wait = await signInWait(deps.db, attempt, now, limits);
  if (wait > 0) {
    deps.metrics.signIns.inc({ outcome: 'throttled' });
    log.warn({ email: attempt.email, address: attempt.address, waitMs: wait }, 'sign-in throttled');
    throw throttled(wait);
  }
  const user = await deps.db
    .selectFrom('web_user')
    .selectAll()
    .where('email', '=', attempt.email)
    .executeTakeFirst();
  // A password no user can have is still verified (against a dummy): every failure costs the same.
  const password = req.password.length <= MAX_PASSWORD_CHARS ? req.password : '';
  const ok = (await verifyPassword(user?.password_hash, password)) && password !== '';
  if (!user || !ok) {
    await recordFailure(deps.db, attempt, now, limits.windowMs);
    deps.metrics.signIns.inc({ outcome: 'wrong_credentials' });
    log.info({ email: attempt.email, address: attempt.address }, 'sign-in failed');
    throw new UnauthenticatedError(WRONG);
  }
  if (await suspendedOnPath(deps.db, user.tenant_id)) {
    deps.metrics.signIns.inc({ outcome: 'invalid' });
    throw new PermissionDeniedError(`tenant ${user.tenant_id} is suspended`);
  }
  await clearAccountFailures(deps.db, attempt.email);
  const done = await deps.db.transaction().execute((trx) => signedIn(deps, trx, user, context));
  log.info({ userId: user.id, sessionId: done.session.id, address: attempt.address }, 'signed in');
  return answerSignIn(deps, context, done);
}

export async function acceptInvitation(
  deps: UserServiceDeps,
  req: { token: string; password: string; displayName: string },
  context: HandlerContext,
) {
  const now = deps.clock.now();
  const password = validPassword(req.password);
  const displayName = req.displayName ? validDisplayName(req.displayName) : undefined;
  const passwordHash = await hashPassword(password);
  const done = await deps.db.transaction().execute(async (trx) => {
    const invitation = await trx
      .selectFrom('invitation')
      .selectAll()
      .where('token_hash', '=', hashSecret(req.token))
      .forUpdate()
      .executeTakeFirst();
    if (!invitation || invitation.accept_time || invitation.revoke_time || invitation.expire_time <= now) {
      // Never echoes the token.
      throw new NotFoundError('invitation', 'for this token');
    }
    const taken = await trx
      .selectFrom('web_user')
      .select('id')
      .where('email', '=', invitation.email)
      .executeTakeFirst();
    if (taken) throw new AlreadyExistsError('user', 'email', invitation.email);
    const user = await trx
      .insertInto('web_user')
      .values({
        id: newId('usr'),
        tenant_id: invitation.tenant_id,
        email: invitation.email,
        display_name: displayName ?? invitation.display_name,
        role: invitation.role,
        password_hash: passwordHash,
      })
      .returningAll()
      .executeTakeFirstOrThrow();
    await trx
      .updateTable('invitation')
      .set({ accept_time: now, user_id: user.id })
      .where('id', '=', invitation.id)
      .execute();
    return signedIn(deps, trx, user, context);
  });
  deps.logger.child({ module: 'users' }).info({ userId: done.user.id }, 'invitation accepted');
  return answerSignIn(deps, context, done);
}

export async function signOut(deps: UserServiceDeps, context: HandlerContext) {
  const { userId, sessionId } = sessionOf(principalOf(context));
  await revokeSessions(deps.db, { userId, sessionId }, deps.clock.now());
  context.responseHeader.append('set-cookie', setCookie(undefined, secureCookie(deps.config, context)));
  return {};
}

export async function getCurrentUser(deps: UserServiceDeps, context: HandlerContext) {
  const principal = principalOf(context);
  const { userId, sessionId } = sessionOf(principal);
  const user = await loadUser(deps.db, [principal.tenantId], userId);
  const session = await deps.db
    .selectFrom('web_session')
    .select('csrf_token')
    .where('id', '=', sessionId)
    .executeTakeFirstOrThrow();
  const tenant = await deps.db
    .selectFrom('tenant')
    .select('display_name')
    .where('id', '=', user.tenant_id)
    .executeTakeFirstOrThrow();
  return {
    user: userToProto(user),
    csrfToken: session.csrf_token,
    tenantDisplayName: tenant.display_name,
    sessionId,
  };
}

export async function changePassword(
  deps: UserServiceDeps,
  req: { currentPassword: string; newPassword: string },
  context: HandlerContext,
) {
  const principal = principalOf(context);
  const { userId, sessionId } = sessionOf(principal);
  const password = validPassword(req.newPassword, 'new_password');
  const user = await loadUser(deps.db, [principal.tenantId], userId);
  const current = req.currentPassword.length <= MAX_PASSWORD_CHARS ? req.currentPassword : '';
  if (!(await verifyPassword(user.password_hash, current))) {
    throw new UnauthenticatedError('wrong current_password');
  }
  const passwordHash = await hashPassword(password);
  await deps.db.transaction().execute(async (trx) => {
    await trx.updateTable('web_user').set({ password_hash: passwordHash }).where('id', '=', userId).execute();
    await revokeSessions(trx, { userId, exceptSessionId: sessionId }, deps.clock.now());
  });
  return {};
}
