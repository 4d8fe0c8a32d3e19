import { create } from '@bufbuild/protobuf';
import {
  DeviceMinutesAction,
  type Quota,
  QuotaPeriod,
  QuotaSchema,
  type Tenant,
  TenantKind,
  TenantSchema,
  TenantState,
} from '@cphone/proto';
import type { Selectable } from 'kysely';
import { compact, ts } from '../api/convert.js';
import type { QuotaTable, TenantKind as TenantKindName, TenantTable } from '../store/schema.js';

export const KIND_TO_PROTO: Record<TenantKindName, TenantKind> = {
  platform: TenantKind.PLATFORM,
  reseller: TenantKind.RESELLER,
  customer: TenantKind.CUSTOMER,
};

export function kindFromProto(kind: TenantKind): TenantKindName | undefined {
  return (Object.entries(KIND_TO_PROTO) as [TenantKindName, TenantKind][]).find(([, v]) => v === kind)?.[0];
}

export function tenantToProto(row: Selectable<TenantTable>): Tenant {
  return create(
    TenantSchema,
    compact({
      tenantId: row.id,
      parentTenantId: row.parent_id ?? '',
      kind: KIND_TO_PROTO[row.kind],
      displayName: row.display_name,
      state: row.state === 'suspended' ? TenantState.SUSPENDED : TenantState.ACTIVE,
      labels: row.labels,
      createTime: ts(row.create_time),
      updateTime: ts(row.update_time),
    }),
  );
}

const opt = (value: number | null | undefined) => (value === null || value === undefined ? undefined : value);
const opt64 = (value: number | null | undefined) =>
  value === null || value === undefined ? undefined : BigInt(value);

/** A tenant's own quota; without a row every limit is unset (unlimited of its own). */
export function quotaToProto(tenantId: string, row: Selectable<QuotaTable> | undefined): Quota {
  return create(
    QuotaSchema,
    compact({
      tenantId,
      maxDevices: opt(row?.max_devices),
      maxRunningDevices: opt(row?.max_running_devices),
      maxVcpuMillicores: opt64(row?.max_vcpu_millicores),
      maxMemoryMib: opt64(row?.max_memory_mib),
      maxDeviceMinutes: opt64(row?.max_device_minutes),
      period: row?.period === 'day' ? QuotaPeriod.DAY : QuotaPeriod.MONTH,
      updateTime: ts(row?.update_time),
      deviceMinutesAction:
        row?.device_minutes_action === 'stop_running'
          ? DeviceMinutesAction.STOP_RUNNING
          : DeviceMinutesAction.REFUSE_STARTS,
    }),
  );
}
