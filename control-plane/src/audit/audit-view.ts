import { create, type JsonObject } from '@bufbuild/protobuf';
import { ActorKind, ActorSchema, type AuditEvent, AuditEventSchema, Role } from '@cphone/proto';
import type { Selectable } from 'kysely';
import { compact, roleToProto, ts } from '../api/convert.js';
import type { AuditLogTable, Role as RoleName } from '../store/schema.js';

const KIND_TO_PROTO: Readonly<Record<string, ActorKind>> = {
  api_key: ActorKind.API_KEY,
  user: ActorKind.USER,
  host: ActorKind.HOST,
  system: ActorKind.SYSTEM,
  anonymous: ActorKind.ANONYMOUS,
};

const ROLES = new Set<string>(['platform_admin', 'ops', 'tenant_admin', 'tenant_user']);

/** Events the control plane records itself have names of their own; API calls get their package. */
function fullMethod(method: string): string {
  return /^[A-Za-z]+Service\//.test(method) ? `cphone.api.v1.${method}` : method;
}

/**
 * One row as an event for a reader who sees the tenants `visible` says: the tenant on the other
 * side of a row it sees for its own side (and that tenant's role) is withheld, so a row never
 * tells a reader whose another tenant's resource or key is.
 */
export function auditEventToProto(
  row: Selectable<AuditLogTable>,
  visible: (tenantId: string) => boolean,
): AuditEvent {
  const actorTenant = row.actor_tenant_id && visible(row.actor_tenant_id) ? row.actor_tenant_id : '';
  const role = actorTenant && ROLES.has(row.role) ? roleToProto(row.role as RoleName) : Role.UNSPECIFIED;
  return create(
    AuditEventSchema,
    compact({
      auditEventId: String(row.id),
      tenantId: visible(row.tenant_id) ? row.tenant_id : '',
      actor: create(ActorSchema, {
        kind: KIND_TO_PROTO[row.actor_kind] ?? ActorKind.UNSPECIFIED,
        id: row.actor,
        tenantId: actorTenant,
        role,
      }),
      method: fullMethod(row.method),
      resourceType: row.resource_type,
      resourceId: row.resource_id,
      outcome: row.outcome,
      message: row.message,
      requestId: row.request_id,
      idempotencyKey: row.idempotency_key,
      remoteAddress: row.remote_address,
      createTime: ts(row.create_time),
      detail: Object.keys(row.detail).length > 0 ? (row.detail as JsonObject) : undefined,
    }),
  );
}
