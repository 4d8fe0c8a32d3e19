// TenantService: the tree platform -> reseller -> customer and each tenant's quota. A caller sees
// its own tenant and its descendants; anything else is NOT_FOUND, never PERMISSION_DENIED.
import { create } from '@bufbuild/protobuf';
import type { ServiceImpl } from '@connectrpc/connect';
import { type Quota, QuotaPeriod, QuotaUsageSchema, TenantKind, type TenantService } from '@cphone/proto';
import type { Kysely } from 'kysely';
import { principalOf } from '../api/context.js';
import { compact, ts } from '../api/convert.js';
import { maskPaths } from '../api/field-mask.js';
import { idempotent } from '../api/idempotency.js';
import { pageOf, readPage } from '../api/pagination.js';
import { tenantSubtree } from '../auth/api-keys.js';
import type { Principal } from '../auth/principal.js';
import { requireRole, resolveTenant } from '../auth/scope.js';
import type { Clock } from '../clock.js';
import {
  FailedPreconditionError,
  InvalidArgumentError,
  NotFoundError,
  PermissionDeniedError,
} from '../errors.js';
import { validLabels } from '../hosts/validate.js';
import { newId } from '../ids.js';
import type { Database, TenantKind as TenantKindName } from '../store/schema.js';
import { checkAgainstAncestors, LIMIT_COLUMNS, type Limits, usageOf } from './quota.js';
import { kindFromProto, quotaToProto, tenantToProto } from './tenant-view.js';

export interface TenantServiceDeps {
  readonly db: Kysely<Database>;
  readonly clock: Clock;
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

export function tenantService(deps: TenantServiceDeps): Partial<ServiceImpl<typeof TenantService>> {
  const { db, clock } = deps;

  async function load(principal: Principal, tenantId: string) {
    const id = resolveTenant(principal, tenantId);
    const row = await db
      .selectFrom('tenant')
      .selectAll()
      .where('id', '=', id)
      .where('delete_time', 'is', null)
      .executeTakeFirst();
    if (!row) throw new NotFoundError('tenant', id);
    return row;
  }

  async function quotaRow(tenantId: string) {
    return db.selectFrom('quota').selectAll().where('tenant_id', '=', tenantId).executeTakeFirst();
  }

  return {
    async createTenant(req, context) {
      const principal = principalOf(context);
      requireRole(principal, 'tenant_admin', 'creating tenants');
      const parent = await load(principal, req.parentTenantId);
      const kind = kindFromProto(req.kind);
      if (!kind || kind === 'platform') {
        throw new InvalidArgumentError(
          'kind',
          TenantKind[req.kind] ?? req.kind,
          'must be RESELLER or CUSTOMER',
        );
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
      const { tenantId } = await idempotent(
        db,
        {
          tenantId: principal.tenantId,
          method: 'TenantService/CreateTenant',
          key: req.requestId,
          request: { parent: parent.id, kind, displayName, labels },
        },
        async (trx) => {
          const id = newId('tnt');
          const now = clock.now();
          await trx
            .insertInto('tenant')
            .values({
              id,
              parent_id: parent.id,
              kind,
              display_name: displayName,
              labels: JSON.stringify(labels),
              create_time: now,
              update_time: now,
            })
            .execute();
          return { tenantId: id };
        },
        { save: (r) => r, load: (saved) => saved as { tenantId: string } },
      );
      const row = await db
        .selectFrom('tenant')
        .selectAll()
        .where('id', '=', tenantId)
        .executeTakeFirstOrThrow();
      return { tenant: tenantToProto(row) };
    },

    async getTenant(req, context) {
      return { tenant: tenantToProto(await load(principalOf(context), req.tenantId)) };
    },

    async listTenants(req, context) {
      const principal = principalOf(context);
      const parent = await load(principal, req.parentTenantId);
      let kind: TenantKindName | undefined;
      if (req.kind !== TenantKind.UNSPECIFIED) {
        kind = kindFromProto(req.kind);
        if (!kind) throw new InvalidArgumentError('kind', req.kind, 'must be a tenant kind');
      }
      const page = readPage(req.pageSize, req.pageToken, {
        parent: parent.id,
        recursive: req.recursive,
        kind,
      });
      let query = db
        .selectFrom('tenant')
        .selectAll()
        .where('delete_time', 'is', null)
        .orderBy('id')
        .limit(page.limit);
      if (req.recursive) {
        const descendants = (await tenantSubtree(db, parent.id)).filter((id) => id !== parent.id);
        if (descendants.length === 0) return { tenants: [], nextPageToken: '' };
        query = query.where('id', 'in', descendants);
      } else {
        query = query.where('parent_id', '=', parent.id);
      }
      if (kind) query = query.where('kind', '=', kind);
      if (page.after) query = query.where('id', '>', page.after);
      const { items, nextPageToken } = pageOf(await query.execute(), page, (r) => r.id);
      return { tenants: items.map(tenantToProto), nextPageToken };
    },

    async updateTenant(req, context) {
      const principal = principalOf(context);
      requireRole(principal, 'tenant_admin', 'updating tenants');
      const row = await load(principal, req.tenant?.tenantId ?? '');
      const paths = maskPaths(req.updateMask, ['display_name', 'labels', 'state']);
      if (paths.has('state')) {
        throw new InvalidArgumentError('update_mask', 'state', 'suspending tenants is not supported yet');
      }
      const set: { display_name?: string; labels?: string } = {};
      if (paths.has('display_name'))
        set.display_name = validDisplayName(req.tenant?.displayName ?? '', 'tenant.display_name');
      if (paths.has('labels'))
        set.labels = JSON.stringify(validLabels(req.tenant?.labels ?? {}, 'tenant.labels'));
      const updated = await db
        .updateTable('tenant')
        .set({ ...set, update_time: clock.now() })
        .where('id', '=', row.id)
        .returningAll()
        .executeTakeFirstOrThrow();
      return { tenant: tenantToProto(updated) };
    },

    async deleteTenant(req, context) {
      const principal = principalOf(context);
      requireRole(principal, 'tenant_admin', 'deleting tenants');
      const row = await load(principal, req.tenantId);
      if (row.id === principal.tenantId) {
        throw new InvalidArgumentError('tenant_id', row.id, "is the caller's own tenant");
      }
      await db.transaction().execute(async (trx) => {
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
          throw new FailedPreconditionError(
            `tenant ${JSON.stringify(row.id)} still has ${devices.n} device(s)`,
          );
        }
        // Soft delete: rows that name the tenant keep their history; its keys stop authenticating.
        await trx
          .updateTable('tenant')
          .set({ delete_time: clock.now(), update_time: clock.now() })
          .where('id', '=', row.id)
          .execute();
      });
      return {};
    },

    async getQuota(req, context) {
      const row = await load(principalOf(context), req.tenantId);
      return { quota: quotaToProto(row.id, await quotaRow(row.id)) };
    },

    async setQuota(req, context) {
      const principal = principalOf(context);
      requireRole(principal, 'tenant_admin', 'setting quotas');
      const row = await load(principal, req.quota?.tenantId ?? '');
      // A tenant may not raise its own limits: only an ancestor sets them (the root has none).
      if (row.id === principal.tenantId && row.kind !== 'platform') {
        throw new PermissionDeniedError(
          `only an ancestor of tenant ${JSON.stringify(row.id)} may set its quota`,
        );
      }
      const input = req.quota;
      const current = await quotaRow(row.id);
      const replaceAll = (req.updateMask?.paths.length ?? 0) === 0;
      const paths = replaceAll
        ? new Set<string>([...LIMIT_COLUMNS, 'period'])
        : maskPaths(req.updateMask, [...LIMIT_COLUMNS, 'period']);
      const limits = {} as Limits;
      for (const column of LIMIT_COLUMNS) {
        const value = input?.[QUOTA_FIELDS[column]] as number | bigint | undefined;
        limits[column] = paths.has(column) ? limitOf(value, `quota.${column}`) : (current?.[column] ?? null);
      }
      let period = current?.period ?? 'month';
      if (paths.has('period')) {
        const wanted = input?.period ?? QuotaPeriod.UNSPECIFIED;
        if (wanted === QuotaPeriod.DAY) period = 'day';
        else if (wanted === QuotaPeriod.MONTH || wanted === QuotaPeriod.UNSPECIFIED) period = 'month';
        else throw new InvalidArgumentError('quota.period', wanted, 'must be DAY or MONTH');
      }
      await checkAgainstAncestors(db, row.id, limits);
      const now = clock.now();
      const saved = await db
        .insertInto('quota')
        .values({ tenant_id: row.id, ...limits, period, update_time: now })
        .onConflict((oc) => oc.column('tenant_id').doUpdateSet({ ...limits, period, update_time: now }))
        .returningAll()
        .executeTakeFirstOrThrow();
      return { quota: quotaToProto(row.id, saved) };
    },

    async getQuotaUsage(req, context) {
      const row = await load(principalOf(context), req.tenantId);
      const quota = await quotaRow(row.id);
      const usage = await usageOf(db, await tenantSubtree(db, row.id), quota?.period ?? 'month', clock.now());
      return {
        quotaUsage: create(
          QuotaUsageSchema,
          compact({
            tenantId: row.id,
            devices: usage.devices,
            runningDevices: usage.runningDevices,
            vcpuMillicores: BigInt(usage.vcpuMillicores),
            memoryMib: BigInt(usage.memoryMib),
            deviceMinutes: BigInt(usage.deviceMinutes),
            periodStartTime: ts(usage.periodStart),
            periodEndTime: ts(usage.periodEnd),
            quota: quotaToProto(row.id, quota),
          }),
        ),
      };
    },
  };
}
