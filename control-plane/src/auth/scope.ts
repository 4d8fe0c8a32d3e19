import { NotFoundError, PermissionDeniedError } from '../errors.js';
import type { Role } from '../store/schema.js';
import { hasRole, type Principal } from './principal.js';

/**
 * The tenant a request acts on: the one it names if the caller may see it, else the caller's own.
 * A tenant the caller cannot see is NOT_FOUND, never PERMISSION_DENIED, so ids leak nothing.
 */
export function resolveTenant(principal: Principal, requested: string | undefined): string {
  if (!requested) return principal.tenantId;
  if (!principal.visibleTenants.includes(requested)) throw new NotFoundError('tenant', requested);
  return requested;
}

export function requireRole(principal: Principal, min: Role, action: string): void {
  if (!hasRole(principal, min)) {
    throw new PermissionDeniedError(`${action} needs role ${min} or higher; the caller is ${principal.role}`);
  }
}
