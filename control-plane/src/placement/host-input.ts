import type { Kysely, Selectable } from 'kysely';
import type { Arch, HostAllocated, HostInput, HostState } from '../scheduler/index.js';
import type { Database, HostTable } from '../store/schema.js';

/** The host columns the scheduler reads. */
export const HOST_COLUMNS = [
  'id',
  'name',
  'arch',
  'labels',
  'connection',
  'cordoned',
  'drain_state',
  'capacity_vcpu_millicores',
  'capacity_memory_mib',
  'capacity_storage_gib',
  'capacity_devices',
  'overcommit_cpu',
  'overcommit_memory',
  'allocated_vcpu_millicores',
  'allocated_memory_mib',
  'allocated_storage_gib',
  'allocated_devices',
] as const;

export type HostRow = Pick<Selectable<HostTable>, (typeof HOST_COLUMNS)[number]>;

/**
 * Only a connected host that no operator has cordoned and that is not being drained takes new
 * phones (the precedence of hosts/host-view.ts, minus credential revocation, which ends the
 * connection anyway). The connection is named first because it is the fact an operator must fix before the others matter;
 * a host that has never said Hello is 'offline'.
 */
export function hostState(row: Pick<HostRow, 'connection' | 'cordoned' | 'drain_state'>): HostState {
  if (row.connection === 'new') return 'offline';
  if (row.connection === 'unreachable') return 'unreachable';
  if (row.drain_state === 'in_progress') return 'draining';
  if (row.cordoned) return 'cordoned';
  return 'ready';
}

const ARCH_ALIASES: Record<string, Arch> = {
  arm64: 'arm64',
  aarch64: 'arm64',
  amd64: 'amd64',
  x86_64: 'amd64',
};

/** The scheduler's arch name for a host's reported one, undefined for one no image can run on. */
export function normalizeArch(arch: string): Arch | undefined {
  return ARCH_ALIASES[arch.toLowerCase()];
}

/** One host row as the scheduler sees it; undefined for an architecture it cannot place on. */
export function toHostInput(
  row: HostRow,
  tenantDevices?: Readonly<Record<string, number>>,
): HostInput | undefined {
  const arch = normalizeArch(row.arch);
  if (!arch) return undefined;
  return {
    id: row.id,
    name: row.name,
    arch,
    state: hostState(row),
    labels: row.labels,
    capacity: {
      vcpuMillicores: row.capacity_vcpu_millicores,
      memoryMib: row.capacity_memory_mib,
      storageGib: row.capacity_storage_gib,
      maxDevices: row.capacity_devices,
    },
    overcommit: { cpu: row.overcommit_cpu, memory: row.overcommit_memory },
    allocated: {
      vcpuMillicores: row.allocated_vcpu_millicores,
      memoryMib: row.allocated_memory_mib,
      storageGib: row.allocated_storage_gib,
      devices: row.allocated_devices,
    },
    ...(tenantDevices ? { tenantDevices } : {}),
  };
}

export interface LoadHostsOptions {
  /** Count this tenant's devices per host (for the tenant-spread scorer). */
  readonly tenantId?: string | undefined;
  /** Only these hosts (a pinned placement); absent means the whole fleet. */
  readonly hostIds?: readonly string[] | undefined;
}

/**
 * Reads the fleet into scheduler inputs. Allocation comes from the host rows' allocated_* columns,
 * which the plan applier maintains in the same transaction as the devices, so they never drift
 * from the device rows. Works on a transaction too (then it sees the transaction's own writes).
 */
export async function loadHostInputs(
  db: Kysely<Database>,
  options: LoadHostsOptions = {},
): Promise<HostInput[]> {
  let query = db.selectFrom('host').select(HOST_COLUMNS);
  if (options.hostIds) {
    if (options.hostIds.length === 0) return [];
    query = query.where('id', 'in', options.hostIds);
  }
  const [rows, counts] = await Promise.all([
    query.execute(),
    options.tenantId ? tenantDeviceCounts(db, options.tenantId) : undefined,
  ]);
  const out: HostInput[] = [];
  for (const row of rows) {
    const count = counts?.get(row.id);
    const input = toHostInput(
      row,
      count !== undefined && options.tenantId ? { [options.tenantId]: count } : undefined,
    );
    if (input) out.push(input);
  }
  return out;
}

/** host id -> the tenant's devices there that hold resources (every state but DELETED). */
async function tenantDeviceCounts(db: Kysely<Database>, tenantId: string): Promise<Map<string, number>> {
  const rows = await db
    .selectFrom('device')
    .select(['host_id', (eb) => eb.fn.countAll<number>().as('n')])
    .where('tenant_id', '=', tenantId)
    .where('host_id', 'is not', null)
    .where('state', '!=', 'deleted')
    .groupBy('host_id')
    .execute();
  return new Map(rows.map((r) => [r.host_id ?? '', Number(r.n)]));
}

/** The host with `extra` added to what it has allocated (a placement in flight, a reservation). */
export function withAllocation(h: HostInput, extra: HostAllocated): HostInput {
  const a = h.allocated ?? { vcpuMillicores: 0, memoryMib: 0, storageGib: 0, devices: 0 };
  return {
    ...h,
    allocated: {
      vcpuMillicores: a.vcpuMillicores + extra.vcpuMillicores,
      memoryMib: a.memoryMib + extra.memoryMib,
      storageGib: a.storageGib + extra.storageGib,
      devices: a.devices + extra.devices,
    },
  };
}
