import type { Role } from '../store/schema.js';

/** Who is calling: the API key's tenant and role. Every query is scoped by `tenantId`. */
export interface Principal {
  readonly keyId: string;
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
