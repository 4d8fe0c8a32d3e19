// AuditService: the audit trail, newest first. A row is the business of two tenants: the target's
// (whose resource was touched) and the actor's (who acted), so tenant A sees B's attempts on A's
// device and B sees its own. A reader sees a row when either tenant is in the subtree it asked
// for (within its own); what it cannot see of the other side is withheld (audit-view.ts).
import type { HandlerContext, ServiceImpl } from '@connectrpc/connect';
import { ActorKind, type AuditService, type ListAuditEventsRequest } from '@cphone/proto';
import type { Kysely } from 'kysely';
import { principalOf } from '../api/context.js';
import { dateOf } from '../api/convert.js';
import { pageOf, readPage } from '../api/pagination.js';
import { tenantSubtree } from '../auth/api-keys.js';
import { requireRole, resolveTenant } from '../auth/scope.js';
import { InvalidArgumentError } from '../errors.js';
import type { Database } from '../store/schema.js';
import { auditEventToProto } from './audit-view.js';
import { OUTCOMES } from './outcome.js';

export interface AuditServiceDeps {
  readonly db: Kysely<Database>;
}

/** The page size the proto promises when none is asked for. */
const DEFAULT_PAGE_SIZE = 100;
const API_PACKAGE = 'cphone.api.v1.';

export const ACTOR_KINDS: Readonly<Partial<Record<ActorKind, string>>> = {
  [ActorKind.API_KEY]: 'api_key',
  [ActorKind.USER]: 'user',
  [ActorKind.HOST]: 'host',
  [ActorKind.SYSTEM]: 'system',
  [ActorKind.ANONYMOUS]: 'anonymous',
};

/** The method as rows store it: API calls without their package. */
function methodFilter(method: string): string {
  return method.startsWith(API_PACKAGE) ? method.slice(API_PACKAGE.length) : method;
}

export async function listAuditEvents(
  deps: AuditServiceDeps,
  req: ListAuditEventsRequest,
  context: HandlerContext,
) {
  const principal = principalOf(context);
  requireRole(principal, 'tenant_admin', 'reading the audit log');
  const tenantId = resolveTenant(principal, req.tenantId);
  if (req.outcome && !OUTCOMES.includes(req.outcome)) {
    throw new InvalidArgumentError(
      'outcome',
      req.outcome,
      'must be a Connect code in snake_case, e.g. not_found',
    );
  }
  let actorKind: string | undefined;
  if (req.actorKind !== ActorKind.UNSPECIFIED) {
    actorKind = ACTOR_KINDS[req.actorKind];
    if (!actorKind) throw new InvalidArgumentError('actor_kind', req.actorKind, 'must be an actor kind');
  }
  const start = dateOf(req.startTime);
  const end = dateOf(req.endTime);
  if (start && end && start >= end) {
    throw new InvalidArgumentError(
      'end_time',
      end.toISOString(),
      `must be after start_time ${start.toISOString()}`,
    );
  }
  const method = methodFilter(req.method);
  const page = readPage(req.pageSize || DEFAULT_PAGE_SIZE, req.pageToken, {
    tenantId,
    descendants: req.includeDescendants,
    actor: req.actorId,
    actorKind,
    method,
    resourceType: req.resourceType,
    resourceId: req.resourceId,
    outcome: req.outcome,
    start: start?.toISOString(),
    end: end?.toISOString(),
  });
  const scope = req.includeDescendants ? await tenantSubtree(deps.db, tenantId) : [tenantId];
  let query = deps.db
    .selectFrom('audit_log')
    .selectAll()
    .where((eb) => eb.or([eb('tenant_id', 'in', scope), eb('actor_tenant_id', 'in', scope)]))
    .orderBy('id', 'desc')
    .limit(page.limit);
  if (req.actorId) query = query.where('actor', '=', req.actorId);
  if (actorKind) query = query.where('actor_kind', '=', actorKind);
  if (method) query = query.where('method', '=', method);
  if (req.resourceType) query = query.where('resource_type', '=', req.resourceType);
  if (req.resourceId) query = query.where('resource_id', '=', req.resourceId);
  if (req.outcome) query = query.where('outcome', '=', req.outcome);
  if (start) query = query.where('create_time', '>=', start);
  if (end) query = query.where('create_time', '<', end);
  if (page.after) query = query.where('id', '<', Number(page.after));
  const { items, nextPageToken } = pageOf(await query.execute(), page, (r) => String(r.id));
  const visible = new Set(principal.visibleTenants);
  return {
    auditEvents: items.map((row) => auditEventToProto(row, (id) => visible.has(id))),
    nextPageToken,
  };
}

export function auditService(deps: AuditServiceDeps): Partial<ServiceImpl<typeof AuditService>> {
  return {
    listAuditEvents: (req, context) => listAuditEvents(deps, req, context),
  };
}
