// cphone.api.v1.UserService (proto/cphone/api/v1/user_service.proto): sessions, users and
// invitations here, the account calls (SignIn, AcceptInvitation, SignOut, GetCurrentUser,
// ChangePassword) in sign-in.ts. All but SignIn and AcceptInvitation run as the caller's principal,
// a user of a role doing exactly what a key of that role may.
import { create } from '@bufbuild/protobuf';
import type { HandlerContext, ServiceImpl } from '@connectrpc/connect';
import { SessionSchema, type UserService } from '@cphone/proto';
import type { Selectable } from 'kysely';
import { principalOf } from '../api/context.js';
import { compact, roleFromProto, ts } from '../api/convert.js';
import { validDisplayName } from '../api/display-name.js';
import { maskPaths } from '../api/field-mask.js';
import { idempotent } from '../api/idempotency.js';
import { pageOf, readPage } from '../api/pagination.js';
import { hashSecret } from '../auth/api-keys.js';
import { requireRole, resolveTenant } from '../auth/scope.js';
import {
  AlreadyExistsError,
  FailedPreconditionError,
  InvalidArgumentError,
  NotFoundError,
} from '../errors.js';
import { newId, newSecret } from '../ids.js';
import type { WebSessionTable, WebUserTable } from '../store/schema.js';
import { validEmail } from './passwords.js';
import { revokeSessions, sessionEnd } from './sessions.js';
import {
  acceptInvitation,
  changePassword,
  getCurrentUser,
  signIn,
  signOut,
  type UserServiceDeps,
} from './sign-in.js';
import {
  invitationToProto,
  loadInvitation,
  loadUser,
  requireGrantable,
  requireManage,
  userToProto,
} from './users.js';

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
