// Queries on web_user and invitation, and who may manage whom. Every read is scoped by the tenants
// the caller may see: anything else is NOT_FOUND.
import { create } from '@bufbuild/protobuf';
import { type Invitation, InvitationSchema, type User, UserSchema } from '@cphone/proto';
import type { Kysely, Selectable } from 'kysely';
import { compact, roleToProto, ts } from '../api/convert.js';
import { FLEET_ROLES } from '../auth/api-keys.js';
import { hasRole, type Principal } from '../auth/principal.js';
import { requireRole } from '../auth/scope.js';
import { InvalidArgumentError, NotFoundError, PermissionDeniedError, quote } from '../errors.js';
import type { Database, InvitationTable, Role, WebUserTable } from '../store/schema.js';

export function userToProto(row: Selectable<WebUserTable>): User {
  return create(
    UserSchema,
    compact({
      userId: row.id,
      tenantId: row.tenant_id,
      email: row.email,
      displayName: row.display_name,
      role: roleToProto(row.role),
      createTime: ts(row.create_time),
      lastSignInTime: ts(row.last_sign_in_time),
    }),
  );
}

export function invitationToProto(row: Selectable<InvitationTable>): Invitation {
  return create(
    InvitationSchema,
    compact({
      invitationId: row.id,
      tenantId: row.tenant_id,
      email: row.email,
      role: roleToProto(row.role),
      displayName: row.display_name,
      creator: row.creator,
      createTime: ts(row.create_time),
      expireTime: ts(row.expire_time),
      acceptTime: ts(row.accept_time),
      revokeTime: ts(row.revoke_time),
      userId: row.user_id,
    }),
  );
}

export async function loadUser(db: Kysely<Database>, tenants: readonly string[], id: string) {
  const row = await db
    .selectFrom('web_user')
    .selectAll()
    .where('id', '=', id)
    .where('tenant_id', 'in', tenants)
    .executeTakeFirst();
  if (!row) throw new NotFoundError('user', id);
  return row;
}

export async function loadInvitation(db: Kysely<Database>, tenants: readonly string[], id: string) {
  const row = await db
    .selectFrom('invitation')
    .selectAll()
    .where('id', '=', id)
    .where('tenant_id', 'in', tenants)
    .executeTakeFirst();
  if (!row) throw new NotFoundError('invitation', id);
  return row;
}

/**
 * Managing a user (or an invitation for one) needs tenant_admin, and a role at least the user's:
 * a tenant admin never touches a platform admin's account.
 */
export function requireManage(principal: Principal, target: { role: Role }, action: string): void {
  requireRole(principal, 'tenant_admin', action);
  if (!hasRole(principal, target.role)) {
    throw new PermissionDeniedError(`a ${principal.role} cannot ${action} of a ${target.role}`);
  }
}

/** A role the caller may give a user of `tenantId`: not above its own, fleet roles on the platform tenant only. */
export async function requireGrantable(
  db: Kysely<Database>,
  principal: Principal,
  role: Role,
  tenantId: string,
): Promise<void> {
  if (!hasRole(principal, role)) {
    throw new PermissionDeniedError(`a ${principal.role} cannot grant role ${role}`);
  }
  const tenant = await db.selectFrom('tenant').select('kind').where('id', '=', tenantId).executeTakeFirst();
  if (!tenant) throw new NotFoundError('tenant', tenantId);
  if (FLEET_ROLES.includes(role) && tenant.kind !== 'platform') {
    throw new InvalidArgumentError(
      'role',
      role,
      `is a fleet-wide role, only for users of the platform tenant; tenant ${quote(tenantId)} is a ${tenant.kind}`,
    );
  }
}
