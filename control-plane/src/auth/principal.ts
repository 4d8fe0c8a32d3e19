import type { Role } from '../store/schema.js';

/**
 * A person behind a call: today a web user signed in with a password (its session); later any
 * identity provider's user (OIDC) maps to the same user id and tenant.
 */
export interface UserIdentity {
  readonly userId: string;
  /** The session the call came with. */
  readonly sessionId: string;
}

/**
 * Who is calling: an API key or a signed-in user, with its tenant and role. Every query is scoped by
 * `tenantId`; a user of a role may do exactly what a key of that role may.
 */
export interface Principal {
  /** What audit rows and created resources name as the actor: the key id or the user id. */
  readonly actor: string;
  /** Set when an API key authenticated the call. */
  readonly keyId?: string | undefined;
  /** Set when a signed-in user's session authenticated the call. */
  readonly user?: UserIdentity | undefined;
  readonly tenantId: string;
  readonly role: Role;
  /** Tenant ids this caller may see: its own and its descendants (resellers see their customers). */
  readonly visibleTenants: readonly string[];
}

const RANK: Record<Role, number> = { tenant_user: 0, tenant_admin: 1, ops: 2, platform_admin: 3 };

/** True when the role is at least `min`. platform_admin > ops > tenant_admin > tenant_user. */
export function hasRole(principal: Principal, min: Role): boolean {
  return RANK[principal.role] >= RANK[min];
}

/** Fleet operations (hosts) are for ops and platform admins only. */
export function isOperator(principal: Principal): boolean {
  return principal.role === 'ops' || principal.role === 'platform_admin';
}
