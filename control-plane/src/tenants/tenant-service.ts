// TenantService: the tree platform -> reseller -> customer and each tenant's quota. A caller sees
// its own tenant and its descendants; anything else is NOT_FOUND, never PERMISSION_DENIED.
import { create } from '@bufbuild/protobuf';
import type { HandlerContext, ServiceImpl } from '@connectrpc/connect';
import {
  type CreateTenantRequest,
  type DeleteTenantRequest,
  DeviceMinutesAction,
  type GetQuotaRequest,
  type GetQuotaUsageRequest,
  type GetTenantRequest,
  type ListTenantsRequest,
  type Quota,
  QuotaPeriod,
  QuotaUsageSchema,
  type SetQuotaRequest,
  TenantKind,
  type TenantService,
  TenantState,
  type UpdateTenantRequest,
} from '@cphone/proto';
import type { Kysely } from 'kysely';
import { principalOf } from '../api/context.js';
import { compact, ts } from '../api/convert.js';
import { maskPaths } from '../api/field-mask.js';
import { idempotentIn } from '../api/idempotency.js';
import { pageOf, readPage } from '../api/pagination.js';
import type { RateLimiter } from '../api/rate-limit.js';
import { transact } from '../api/validate-only.js';
import { tenantSubtree } from '../auth/api-keys.js';
import type { AuthCache } from '../auth/auth-cache.js';
import type { Principal } from '../auth/principal.js';
import { requireRole, resolveTenant } from '../auth/scope.js';
import type { Clock } from '../clock.js';
import { stopTenantDevices } from '../devices/lifecycle.js';
import {
  FailedPreconditionError,
  InvalidArgumentError,
  NotFoundError,
  PermissionDeniedError,
} from '../errors.js';
import type { AgentGateway } from '../gateway/types.js';
import { validLabels } from '../hosts/validate.js';
import { newId } from '../ids.js';
import type { Logger } from '../logger.js';
import type {
  Database,
  DeviceMinutesAction as DeviceMinutesActionName,
  TenantKind as TenantKindName,
} from '../store/schema.js';
import { endStreamSessions } from '../store/streams.js';
import { descendantQuotas, insertTenant, lockQuotaPath } from '../store/tenants.js';
import { tellHost } from '../streams/stream-service.js';
import { subtreeUse } from './admission.js';
import { checkLimits, deviceMinutesOf, LIMIT_COLUMNS, type Limits, periodOf } from './quota.js';
import { RATE_LIMIT_PATHS, rateLimitsOf, saveRateLimits, withRateLimits } from './rate-limit-quota.js';
import { kindFromProto, quotaToProto, tenantToProto } from './tenant-view.js';

export interface TenantServiceDeps {
  readonly db: Kysely<Database>;
  readonly clock: Clock;
  readonly logger: Logger;
  /** To stop a suspended tenant's phones and cut its viewers (absent in some tests). */
  readonly gateway?: Pick<AgentGateway, 'desiredChanged' | 'revokeStreams'> | undefined;
  /** Cached authentications: a new, deleted, suspended or reactivated tenant changes their scope. */
  readonly authCache?: AuthCache | undefined;
  /** Told when SetQuota changes a tenant's rate limit overrides (absent in some tests). */
  readonly rateLimiter?: Pick<RateLimiter, 'changed'> | undefined;
}

/** Which kinds each kind may have as children. Only platform admins create resellers. */
const CHILD_KINDS: Record<TenantKindName, readonly TenantKindName[]> = {
  platform: ['reseller', 'customer'],
  reseller: ['customer'],
  customer: [],
};

function validDisplayName(name: string, field: string): string {
  const trimmed = name.trim();
  if (!trimmed || trimmed.length > 200)
    throw new InvalidArgumentError(field, name, 'must be 1-200 characters');
  return trimmed;
}

function limitOf(value: number | bigint | undefined, field: string): number | null {
  if (value === undefined) return null;
  const n = Number(value);
  if (!Number.isSafeInteger(n) || n < 0) throw new InvalidArgumentError(field, String(value), 'must be >= 0');
  return n;
}

const QUOTA_FIELDS: Record<(typeof LIMIT_COLUMNS)[number], keyof Quota> = {
  max_devices: 'maxDevices',
  max_running_devices: 'maxRunningDevices',
  max_vcpu_millicores: 'maxVcpuMillicores',
  max_memory_mib: 'maxMemoryMib',
  max_device_minutes: 'maxDeviceMinutes',
};

async function load(deps: TenantServiceDeps, principal: Principal, tenantId: string) {
  const id = resolveTenant(principal, tenantId);
  const row = await deps.db
    .selectFrom('tenant')
    .selectAll()
    .where('id', '=', id)
    .where('delete_time', 'is', null)
    .executeTakeFirst();
  if (!row) throw new NotFoundError('tenant', id);
  return row;
}

function quotaRow(deps: TenantServiceDeps, tenantId: string) {
  return deps.db.selectFrom('quota').selectAll().where('tenant_id', '=', tenantId).executeTakeFirst();
}

export async function createTenant(
  deps: TenantServiceDeps,
  req: CreateTenantRequest,
  context: HandlerContext,
) {
  const principal = principalOf(context);
  requireRole(principal, 'tenant_admin', 'creating tenants');
  const parent = await load(deps, principal, req.parentTenantId);
  const kind = kindFromProto(req.kind);
  if (!kind || kind === 'platform') {
    throw new InvalidArgumentError('kind', TenantKind[req.kind] ?? req.kind, 'must be RESELLER or CUSTOMER');
  }
  if (!CHILD_KINDS[parent.kind].includes(kind)) {
    throw new InvalidArgumentError('kind', kind, `a ${parent.kind} tenant cannot have ${kind} children`);
  }
  if (kind === 'reseller' && principal.role !== 'platform_admin') {
    throw new PermissionDeniedError(
      `creating resellers needs role platform_admin; the caller is ${principal.role}`,
    );
  }
  const displayName = validDisplayName(req.displayName, 'display_name');
  const labels = validLabels(req.labels);
  let created = false;
  const row = await transact(deps.db, req.validateOnly, async (trx) => {
    const { tenantId } = await idempotentIn(
      trx,
      {
        tenantId: principal.tenantId,
        method: 'TenantService/CreateTenant',
        key: req.requestId,
        request: { parent: parent.id, kind, displayName, labels },
      },
      async (t) => {
        const id = newId('tnt');
        const now = deps.clock.now();
        await insertTenant(t, {
          id,
          parent_id: parent.id,
          kind,
          display_name: displayName,
          labels: JSON.stringify(labels),
          create_time: now,
          update_time: now,
        });
        created = true;
        return { tenantId: id };
      },
      { save: (r) => r, load: (saved) => saved as { tenantId: string } },
    );
    return trx.selectFrom('tenant').selectAll().where('id', '=', tenantId).executeTakeFirstOrThrow();
  });
  if (req.validateOnly) {
    // A tenant a dry run made up has no id; one an earlier call with the same key made keeps its own.
    return { tenant: created ? tenantToProto({ ...row, id: '' }) : tenantToProto(row) };
  }
  // The ancestors' keys see the new tenant on their next call (also after a retried request).
  await deps.authCache?.changed({ kind: 'tenants' });
  return { tenant: tenantToProto(row) };
}

export async function getTenant(deps: TenantServiceDeps, req: GetTenantRequest, context: HandlerContext) {
  return { tenant: tenantToProto(await load(deps, principalOf(context), req.tenantId)) };
}

export async function listTenants(deps: TenantServiceDeps, req: ListTenantsRequest, context: HandlerContext) {
  const principal = principalOf(context);
  const parent = await load(deps, principal, req.parentTenantId);
  let kind: TenantKindName | undefined;
  if (req.kind !== TenantKind.UNSPECIFIED) {
    kind = kindFromProto(req.kind);
    if (!kind) throw new InvalidArgumentError('kind', req.kind, 'must be a tenant kind');
  }
  const page = readPage(req.pageSize, req.pageToken, { parent: parent.id, recursive: req.recursive, kind });
  let query = deps.db
    .selectFrom('tenant')
    .selectAll()
    .where('delete_time', 'is', null)
    .orderBy('id')
    .limit(page.limit);
  if (req.recursive) {
    const descendants = (await tenantSubtree(deps.db, parent.id)).filter((id) => id !== parent.id);
    if (descendants.length === 0) return { tenants: [], nextPageToken: '' };
    query = query.where('id', 'in', descendants);
  } else {
    query = query.where('parent_id', '=', parent.id);
  }
  if (kind) query = query.where('kind', '=', kind);
  if (page.after) query = query.where('id', '>', page.after);
  const { items, nextPageToken } = pageOf(await query.execute(), page, (r) => r.id);
  return { tenants: items.map(tenantToProto), nextPageToken };
}

export async function updateTenant(
  deps: TenantServiceDeps,
  req: UpdateTenantRequest,
  context: HandlerContext,
) {
  const principal = principalOf(context);
  requireRole(principal, 'tenant_admin', 'updating tenants');
  const row = await load(deps, principal, req.tenant?.tenantId ?? '');
  const paths = maskPaths(req.updateMask, ['display_name', 'labels', 'state']);
  const set: { display_name?: string; labels?: string; state?: 'active' | 'suspended' } = {};
  if (paths.has('display_name'))
    set.display_name = validDisplayName(req.tenant?.displayName ?? '', 'tenant.display_name');
  if (paths.has('labels'))
    set.labels = JSON.stringify(validLabels(req.tenant?.labels ?? {}, 'tenant.labels'));
  if (paths.has('state')) {
    const wanted = req.tenant?.state ?? TenantState.UNSPECIFIED;
    if (wanted === TenantState.SUSPENDED) set.state = 'suspended';
    else if (wanted === TenantState.ACTIVE) set.state = 'active';
    else throw new InvalidArgumentError('tenant.state', wanted, 'must be ACTIVE or SUSPENDED');
    if (row.id === principal.tenantId) {
      throw new PermissionDeniedError(
        `only an ancestor of tenant ${JSON.stringify(row.id)} may change its state`,
      );
    }
  }
  const now = deps.clock.now();
  const suspending = set.state === 'suspended' && row.state !== 'suspended';
  const { updated, stopped, ended } = await transact(deps.db, req.validateOnly, async (trx) => {
    const subtree = suspending ? await tenantSubtree(trx, row.id) : [];
    // Lock order is devices, then quota rows (store/hosts.ts): the running phones first, then the
    // tenant's quota row, which waits for admissions in flight below it and makes later ones see
    // the suspension (tenants/admission.ts). A phone started in between is stopped below.
    let stopped: string[] = [];
    if (suspending) {
      stopped = await stopTenantDevices(trx, subtree, now);
      await trx.selectFrom('quota').select('tenant_id').where('tenant_id', '=', row.id).forUpdate().execute();
    }
    const updated = await trx
      .updateTable('tenant')
      .set({ ...set, update_time: now })
      .where('id', '=', row.id)
      .returningAll()
      .executeTakeFirstOrThrow();
    if (!suspending) return { updated, stopped, ended: [] };
    stopped = [...stopped, ...(await stopTenantDevices(trx, subtree, now))];
    return {
      updated,
      stopped,
      ended: await endStreamSessions(trx, { tenantIds: subtree }, 'TENANT_SUSPENDED', now),
    };
  });
  if (req.validateOnly) return { tenant: tenantToProto(updated) };
  if (set.state !== undefined && set.state !== row.state) await deps.authCache?.changed({ kind: 'tenants' });
  // Suspending stops the subtree's phones and cuts their viewers at once.
  for (const hostId of new Set(stopped)) deps.gateway?.desiredChanged(hostId);
  for (const s of ended) {
    if (deps.gateway) {
      tellHost({ gateway: deps.gateway, logger: deps.logger }, s.host_id, {
        sessionId: s.id,
        reason: 'TENANT_SUSPENDED',
        message: 'the account was suspended',
      });
    }
  }
  return { tenant: tenantToProto(updated) };
}

export async function deleteTenant(
  deps: TenantServiceDeps,
  req: DeleteTenantRequest,
  context: HandlerContext,
) {
  const principal = principalOf(context);
  requireRole(principal, 'tenant_admin', 'deleting tenants');
  const row = await load(deps, principal, req.tenantId);
  if (row.id === principal.tenantId) {
    throw new InvalidArgumentError('tenant_id', row.id, "is the caller's own tenant");
  }
  await deps.db.transaction().execute(async (trx) => {
    await trx.selectFrom('tenant').select('id').where('id', '=', row.id).forUpdate().execute();
    const children = await trx
      .selectFrom('tenant')
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .where('parent_id', '=', row.id)
      .where('delete_time', 'is', null)
      .executeTakeFirstOrThrow();
    if (Number(children.n) > 0) {
      throw new FailedPreconditionError(
        `tenant ${JSON.stringify(row.id)} still has ${children.n} child tenant(s)`,
      );
    }
    const devices = await trx
      .selectFrom('device')
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .where('tenant_id', '=', row.id)
      .where('delete_time', 'is', null)
      .where('state', '!=', 'deleted')
      .executeTakeFirstOrThrow();
    if (Number(devices.n) > 0) {
      throw new FailedPreconditionError(`tenant ${JSON.stringify(row.id)} still has ${devices.n} device(s)`);
    }
    // Soft delete: rows that name the tenant keep their history; its keys stop authenticating.
    await trx
      .updateTable('tenant')
      .set({ delete_time: deps.clock.now(), update_time: deps.clock.now() })
      .where('id', '=', row.id)
      .execute();
  });
  await deps.authCache?.changed({ kind: 'tenants' });
  return {};
}

export async function getQuota(deps: TenantServiceDeps, req: GetQuotaRequest, context: HandlerContext) {
  const row = await load(deps, principalOf(context), req.tenantId);
  return { quota: await withRateLimits(deps.db, quotaToProto(row.id, await quotaRow(deps, row.id))) };
}

/**
 * Sets a tenant's limits. Under the locks of its path's quota rows (the ones admission takes), a
 * limit is refused above an ancestor's limit or below a descendant's, so a child's limit never
 * exceeds its parent's; creates counting against the old limits finish first.
 */
export async function setQuota(deps: TenantServiceDeps, req: SetQuotaRequest, context: HandlerContext) {
  const principal = principalOf(context);
  requireRole(principal, 'tenant_admin', 'setting quotas');
  const row = await load(deps, principal, req.quota?.tenantId ?? '');
  // A tenant may not raise its own limits: only an ancestor sets them (the root has none).
  if (row.id === principal.tenantId && row.kind !== 'platform') {
    throw new PermissionDeniedError(`only an ancestor of tenant ${JSON.stringify(row.id)} may set its quota`);
  }
  const input = req.quota;
  const replaceAll = (req.updateMask?.paths.length ?? 0) === 0;
  const paths = replaceAll
    ? new Set<string>([...LIMIT_COLUMNS, 'period', 'device_minutes_action', ...RATE_LIMIT_PATHS])
    : maskPaths(req.updateMask, [...LIMIT_COLUMNS, 'period', 'device_minutes_action', ...RATE_LIMIT_PATHS]);
  const rateLimits = rateLimitsOf(input, paths);
  let rateLimitsChanged = false;
  let wantedAction: DeviceMinutesActionName | undefined;
  if (paths.has('device_minutes_action')) {
    const wanted = input?.deviceMinutesAction ?? DeviceMinutesAction.UNSPECIFIED;
    if (wanted === DeviceMinutesAction.STOP_RUNNING) wantedAction = 'stop_running';
    else if (wanted === DeviceMinutesAction.REFUSE_STARTS || wanted === DeviceMinutesAction.UNSPECIFIED)
      wantedAction = 'refuse_starts';
    else
      throw new InvalidArgumentError(
        'quota.device_minutes_action',
        wanted,
        'must be REFUSE_STARTS or STOP_RUNNING',
      );
  }
  let wantedPeriod: 'day' | 'month' | undefined;
  if (paths.has('period')) {
    const wanted = input?.period ?? QuotaPeriod.UNSPECIFIED;
    if (wanted === QuotaPeriod.DAY) wantedPeriod = 'day';
    else if (wanted === QuotaPeriod.MONTH || wanted === QuotaPeriod.UNSPECIFIED) wantedPeriod = 'month';
    else throw new InvalidArgumentError('quota.period', wanted, 'must be DAY or MONTH');
  }
  const given = {} as Partial<Limits>;
  for (const column of LIMIT_COLUMNS) {
    if (paths.has(column))
      given[column] = limitOf(
        input?.[QUOTA_FIELDS[column]] as number | bigint | undefined,
        `quota.${column}`,
      );
  }
  const saved = await transact(deps.db, req.validateOnly, async (trx) => {
    const path = await lockQuotaPath(trx, row.id);
    const current = path.find((q) => q.tenant_id === row.id);
    const limits = {} as Limits;
    for (const column of LIMIT_COLUMNS)
      limits[column] = column in given ? (given[column] ?? null) : (current?.[column] ?? null);
    checkLimits(
      limits,
      path.filter((q) => q.tenant_id !== row.id),
      await descendantQuotas(trx, row.id),
    );
    const period = wantedPeriod ?? current?.period ?? 'month';
    const action = wantedAction ?? current?.device_minutes_action ?? 'refuse_starts';
    const now = deps.clock.now();
    rateLimitsChanged = await saveRateLimits(trx, row.id, rateLimits, now);
    const values = { ...limits, period, device_minutes_action: action, update_time: now };
    return trx
      .insertInto('quota')
      .values({ tenant_id: row.id, ...values })
      .onConflict((oc) => oc.column('tenant_id').doUpdateSet(values))
      .returningAll()
      .executeTakeFirstOrThrow();
  });
  if (rateLimitsChanged && !req.validateOnly) await deps.rateLimiter?.changed();
  const quota = quotaToProto(row.id, saved);
  // A dry run wrote nothing: the overrides it would set are the request's own.
  return { quota: req.validateOnly ? quota : await withRateLimits(deps.db, quota) };
}

/**
 * What the tenant's subtree uses: the very numbers quota admission counts, for the tenant and for
 * each ancestor up to the root (a refusal names the same numbers).
 */
export async function getQuotaUsage(
  deps: TenantServiceDeps,
  req: GetQuotaUsageRequest,
  context: HandlerContext,
) {
  const row = await load(deps, principalOf(context), req.tenantId);
  const path = await pathToRoot(deps.db, row.id);
  const [own, ...ancestors] = await Promise.all(path.map((id) => quotaUsageOf(deps, id)));
  return { quotaUsage: own, ancestors };
}

/** The tenant's ids from itself up to the root, nearest first. */
async function pathToRoot(db: Kysely<Database>, tenantId: string): Promise<string[]> {
  const path: string[] = [];
  let next: string | null = tenantId;
  while (next !== null && !path.includes(next)) {
    path.push(next);
    const parent: { parent_id: string | null } | undefined = await db
      .selectFrom('tenant')
      .select('parent_id')
      .where('id', '=', next)
      .executeTakeFirst();
    next = parent?.parent_id ?? null;
  }
  return path;
}

async function quotaUsageOf(deps: TenantServiceDeps, tenantId: string) {
  const quota = await quotaRow(deps, tenantId);
  const period = periodOf(quota?.period ?? 'month', deps.clock.now());
  const [use, deviceMinutes, reading] = await Promise.all([
    subtreeUse(deps.db, tenantId),
    deviceMinutesOf(deps.db, await tenantSubtree(deps.db, tenantId), period),
    deps.db
      .selectFrom('quota_minutes')
      .select('used_minutes')
      .where('tenant_id', '=', tenantId)
      .where('period_start', '=', period.start)
      .executeTakeFirst(),
  ]);
  const limit = quota?.max_device_minutes ?? null;
  return create(
    QuotaUsageSchema,
    compact({
      tenantId,
      devices: use.devices,
      runningDevices: use.runningDevices,
      vcpuMillicores: BigInt(use.vcpuMillicores),
      memoryMib: BigInt(use.memoryMib),
      deviceMinutes: BigInt(deviceMinutes),
      periodStartTime: ts(period.start),
      periodEndTime: ts(period.end),
      quota: quotaToProto(tenantId, quota),
      deviceMinutesExhausted: limit !== null && reading !== undefined && reading.used_minutes >= limit,
    }),
  );
}

export function tenantService(deps: TenantServiceDeps): Partial<ServiceImpl<typeof TenantService>> {
  return {
    createTenant: (req, context) => createTenant(deps, req, context),
    getTenant: (req, context) => getTenant(deps, req, context),
    listTenants: (req, context) => listTenants(deps, req, context),
    updateTenant: (req, context) => updateTenant(deps, req, context),
    deleteTenant: (req, context) => deleteTenant(deps, req, context),
    getQuota: (req, context) => getQuota(deps, req, context),
    setQuota: (req, context) => setQuota(deps, req, context),
    getQuotaUsage: (req, context) => getQuotaUsage(deps, req, context),
  };
}
