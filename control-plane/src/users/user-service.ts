// cphone.api.v1.UserService: sign-in, sessions, users and invitations (proto/cphone/api/v1/
// user_service.proto). SignIn and AcceptInvitation are public (api/caller.ts); the rest run as the
// caller's principal, a user of a role doing exactly what a key of that role may.
import { create } from '@bufbuild/protobuf';
import { Code, ConnectError, type HandlerContext, type ServiceImpl } from '@connectrpc/connect';
import { RetryInfoSchema, SessionSchema, type UserService } from '@cphone/proto';
import type { Kysely, Selectable } from 'kysely';
import { principalKey, principalOf } from '../api/context.js';
import { compact, roleFromProto, ts } from '../api/convert.js';
import { validDisplayName } from '../api/display-name.js';
import { maskPaths } from '../api/field-mask.js';
import { idempotent } from '../api/idempotency.js';
import { pageOf, readPage } from '../api/pagination.js';
import { hashSecret, suspendedOnPath } from '../auth/api-keys.js';
import type { Principal } from '../auth/principal.js';
import { requireRole, resolveTenant } from '../auth/scope.js';
import type { Clock } from '../clock.js';
import type { ControlPlaneConfig } from '../config.js';
import {
  AlreadyExistsError,
  FailedPreconditionError,
  InvalidArgumentError,
  NotFoundError,
  PermissionDeniedError,
  UnauthenticatedError,
} from '../errors.js';
import { newId, newSecret } from '../ids.js';
import type { Logger } from '../logger.js';
import type { Metrics } from '../metrics.js';
import type { Database, WebSessionTable, WebUserTable } from '../store/schema.js';
import {
  hashPassword,
  MAX_PASSWORD_CHARS,
  normalEmail,
  validEmail,
  validPassword,
  verifyPassword,
} from './passwords.js';
import {
  CLIENT_ADDRESS_HEADER,
  createSession,
  revokeSessions,
  type SessionTimes,
  sessionEnd,
  setCookie,
} from './sessions.js';
import { clearAccountFailures, recordFailure, signInWait } from './throttle.js';
import {
  invitationToProto,
  loadInvitation,
  loadUser,
  requireGrantable,
  requireManage,
  userToProto,
} from './users.js';

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

function clientAddress(context: HandlerContext): string {
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

async function signIn(
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

async function acceptInvitation(
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

async function signOut(deps: UserServiceDeps, context: HandlerContext) {
  const { userId, sessionId } = sessionOf(principalOf(context));
  await revokeSessions(deps.db, { userId, sessionId }, deps.clock.now());
  context.responseHeader.append('set-cookie', setCookie(undefined, secureCookie(deps.config, context)));
  return {};
}

async function getCurrentUser(deps: UserServiceDeps, context: HandlerContext) {
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
  return { user: userToProto(user), csrfToken: session.csrf_token, tenantDisplayName: tenant.display_name };
}

async function changePassword(
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

function sessionToProto(row: Selectable<WebSessionTable>, idleMs: number) {
  return create(
    SessionSchema,
    compact({
      sessionId: row.id,
      userId: row.user_id,
      createTime: ts(row.create_time),
      lastSeenTime: ts(row.last_seen_time),
      expireTime: ts(sessionEnd(row, idleMs)),
      userAgent: row.user_agent,
      clientAddress: row.client_address,
    }),
  );
}

async function listSessions(
  deps: UserServiceDeps,
  req: { userId: string; pageSize: number; pageToken: string },
  context: HandlerContext,
) {
  const principal = principalOf(context);
  const own = principal.user?.userId;
  const userId = req.userId || own;
  if (!userId) throw new InvalidArgumentError('user_id', '', 'must be set when the caller is an API key');
  const user = await loadUser(deps.db, principal.visibleTenants, userId);
  if (userId !== own) requireManage(principal, user, 'list the sessions');
  const now = deps.clock.now();
  const idleMs = deps.config.sessionIdleTimeoutMs;
  const page = readPage(req.pageSize, req.pageToken, { userId });
  let query = deps.db
    .selectFrom('web_session')
    .selectAll()
    .where('user_id', '=', userId)
    .where('revoke_time', 'is', null)
    .where('expire_time', '>', now)
    .where('last_seen_time', '>', new Date(now.getTime() - idleMs))
    .orderBy('id')
    .limit(page.limit);
  if (page.after) query = query.where('id', '>', page.after);
  const { items, nextPageToken } = pageOf(await query.execute(), page, (r) => r.id);
  return { sessions: items.map((r) => sessionToProto(r, idleMs)), nextPageToken };
}

async function revokeSession(deps: UserServiceDeps, req: { sessionId: string }, context: HandlerContext) {
  const principal = principalOf(context);
  const session = await deps.db
    .selectFrom('web_session')
    .select(['id', 'user_id'])
    .where('id', '=', req.sessionId)
    .where('tenant_id', 'in', principal.visibleTenants)
    .executeTakeFirst();
  if (!session) throw new NotFoundError('session', req.sessionId);
  if (session.user_id !== principal.user?.userId) {
    requireManage(
      principal,
      await loadUser(deps.db, principal.visibleTenants, session.user_id),
      'end a session',
    );
  }
  await revokeSessions(deps.db, { userId: session.user_id, sessionId: session.id }, deps.clock.now());
  return {};
}

async function listUsers(
  deps: UserServiceDeps,
  req: { tenantId: string; pageSize: number; pageToken: string },
  context: HandlerContext,
) {
  const tenantId = resolveTenant(principalOf(context), req.tenantId);
  const page = readPage(req.pageSize, req.pageToken, { tenantId, users: true });
  let query = deps.db
    .selectFrom('web_user')
    .selectAll()
    .where('tenant_id', '=', tenantId)
    .orderBy('id')
    .limit(page.limit);
  if (page.after) query = query.where('id', '>', page.after);
  const { items, nextPageToken } = pageOf(await query.execute(), page, (r) => r.id);
  return { users: items.map(userToProto), nextPageToken };
}

async function updateUser(
  deps: UserServiceDeps,
  req: {
    user?: { userId: string; displayName: string; role: number } | undefined;
    updateMask?: { paths: string[] } | undefined;
  },
  context: HandlerContext,
) {
  const principal = principalOf(context);
  const paths = maskPaths(req.updateMask as Parameters<typeof maskPaths>[0], ['display_name', 'role']);
  const given = req.user;
  if (!given) throw new InvalidArgumentError('user', '', 'must be set');
  const user = await loadUser(deps.db, principal.visibleTenants, given.userId);
  requireManage(principal, user, 'change the account');
  const changes: { display_name?: string; role?: WebUserTable['role'] } = {};
  if (paths.has('display_name'))
    changes.display_name = validDisplayName(given.displayName, 'user.display_name');
  if (paths.has('role')) {
    changes.role = roleFromProto(given.role, 'user.role');
    await requireGrantable(deps.db, principal, changes.role, user.tenant_id);
  }
  const updated = await deps.db
    .updateTable('web_user')
    .set(changes)
    .where('id', '=', user.id)
    .returningAll()
    .executeTakeFirstOrThrow();
  return { user: userToProto(updated) };
}

async function deleteUser(deps: UserServiceDeps, req: { userId: string }, context: HandlerContext) {
  const principal = principalOf(context);
  const user = await loadUser(deps.db, principal.visibleTenants, req.userId);
  requireManage(principal, user, 'delete the account');
  if (user.id === principal.user?.userId) {
    throw new FailedPreconditionError(`user ${user.id} is the caller: a user cannot delete itself`);
  }
  // Its sessions go with it (on delete cascade): the next call with one of their cookies finds none.
  await deps.db
    .transaction()
    .execute((trx) => trx.deleteFrom('web_user').where('id', '=', user.id).execute());
  return {};
}

async function inviteUser(
  deps: UserServiceDeps,
  req: { tenantId: string; email: string; role: number; displayName: string; requestId: string },
  context: HandlerContext,
) {
  const principal = principalOf(context);
  requireRole(principal, 'tenant_admin', 'inviting users');
  const tenantId = resolveTenant(principal, req.tenantId);
  const role = roleFromProto(req.role);
  const email = validEmail(req.email);
  await requireGrantable(deps.db, principal, role, tenantId);
  const displayName = validDisplayName(req.displayName || email.slice(0, email.indexOf('@')));
  const now = deps.clock.now();
  const input = { tenantId, email, role, displayName };
  const { id, token } = await idempotent(
    deps.db,
    { tenantId, method: 'InviteUser', key: req.requestId, request: input },
    async (trx) => {
      const taken = await trx
        .selectFrom('web_user')
        .select('id')
        .where('email', '=', email)
        .executeTakeFirst();
      if (taken) throw new AlreadyExistsError('user', 'email', email);
      const token = newSecret('cpi');
      const id = newId('inv');
      await trx
        .insertInto('invitation')
        .values({
          id,
          tenant_id: tenantId,
          email,
          role,
          display_name: displayName,
          token_hash: hashSecret(token),
          creator: principal.actor,
          create_time: now,
          expire_time: new Date(now.getTime() + deps.config.invitationTtlMs),
        })
        .execute();
      return { id, token };
    },
    {
      save: ({ id }) => ({ invitationId: id }),
      load: (saved) => {
        const invitationId = (saved as { invitationId?: string } | null)?.invitationId ?? '';
        throw new AlreadyExistsError(`invitation ${invitationId}`, 'request_id', req.requestId);
      },
    },
  );
  return { invitation: invitationToProto(await loadInvitation(deps.db, [tenantId], id)), token };
}

async function listInvitations(
  deps: UserServiceDeps,
  req: { tenantId: string; pageSize: number; pageToken: string },
  context: HandlerContext,
) {
  const principal = principalOf(context);
  requireRole(principal, 'tenant_admin', 'listing invitations');
  const tenantId = resolveTenant(principal, req.tenantId);
  const page = readPage(req.pageSize, req.pageToken, { tenantId, invitations: true });
  let query = deps.db
    .selectFrom('invitation')
    .selectAll()
    .where('tenant_id', '=', tenantId)
    .where('accept_time', 'is', null)
    .where('revoke_time', 'is', null)
    .where('expire_time', '>', deps.clock.now())
    .orderBy('id')
    .limit(page.limit);
  if (page.after) query = query.where('id', '>', page.after);
  const { items, nextPageToken } = pageOf(await query.execute(), page, (r) => r.id);
  return { invitations: items.map(invitationToProto), nextPageToken };
}

async function revokeInvitation(
  deps: UserServiceDeps,
  req: { invitationId: string },
  context: HandlerContext,
) {
  const principal = principalOf(context);
  const invitation = await loadInvitation(deps.db, principal.visibleTenants, req.invitationId);
  requireManage(principal, invitation, 'revoke the invitation');
  if (invitation.accept_time) {
    throw new FailedPreconditionError(
      `invitation ${invitation.id} was already accepted by user ${invitation.user_id}`,
    );
  }
  const revoked = await deps.db
    .updateTable('invitation')
    .set({ revoke_time: invitation.revoke_time ?? deps.clock.now() })
    .where('id', '=', invitation.id)
    .returningAll()
    .executeTakeFirstOrThrow();
  return { invitation: invitationToProto(revoked) };
}

export function userService(deps: UserServiceDeps): ServiceImpl<typeof UserService> {
  return {
    signIn: (req, context) => signIn(deps, req, context),
    signOut: (_req, context) => signOut(deps, context),
    getCurrentUser: (_req, context) => getCurrentUser(deps, context),
    listUsers: (req, context) => listUsers(deps, req, context),
    getUser: async (req, context) => ({
      user: userToProto(await loadUser(deps.db, principalOf(context).visibleTenants, req.userId)),
    }),
    updateUser: (req, context) => updateUser(deps, req, context),
    deleteUser: (req, context) => deleteUser(deps, req, context),
    inviteUser: (req, context) => inviteUser(deps, req, context),
    listInvitations: (req, context) => listInvitations(deps, req, context),
    revokeInvitation: (req, context) => revokeInvitation(deps, req, context),
    acceptInvitation: (req, context) => acceptInvitation(deps, req, context),
    listSessions: (req, context) => listSessions(deps, req, context),
    revokeSession: (req, context) => revokeSession(deps, req, context),
    changePassword: (req, context) => changePassword(deps, req, context),
  };
}
