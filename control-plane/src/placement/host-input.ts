// Host rows as the scheduler reads them.
import type { Kysely, Transaction } from 'kysely';
import type { Arch, HostInput, HostState, Resources } from '../scheduler/index.js';
import { type SchedulingRow, selectSchedulingRows } from '../store/hosts.js';
import type { Database } from '../store/schema.js';

type Db = Kysely<Database> | Transaction<Database>;

/**
 * Only a host with an open agent stream, that no operator has cordoned and that is not being
 * drained takes new phones. A host heartbeating within its TTL whose stream is closed right now
 * (its agent or a control-plane replica restarting) is 'disconnected': placed on only when no
 * connected host fits. A host that has never said Hello is 'offline'.
 */
export function hostState(
  row: Pick<SchedulingRow, 'connection' | 'cordoned' | 'drain_state' | 'gateway_replica'>,
): HostState {
  if (row.connection === 'new') return 'offline';
  if (row.connection === 'unreachable') return 'unreachable';
  if (row.drain_state === 'in_progress') return 'draining';
  if (row.cordoned) return 'cordoned';
  if (row.gateway_replica === null) return 'disconnected';
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

export function allocationOf(row: SchedulingRow): Resources {
  return {
    vcpuMillicores: row.allocated_vcpu_millicores,
    memoryMib: row.allocated_memory_mib,
    storageGib: row.allocated_storage_gib,
    devices: row.allocated_devices,
  };
}

/** One host row as the scheduler sees it; undefined for an architecture it cannot place on. */
export function toHostInput(
  row: SchedulingRow,
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
      devices: row.capacity_devices,
    },
    overcommit: { cpu: row.overcommit_cpu, memory: row.overcommit_memory },
    allocated: allocationOf(row),
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
 * Reads the fleet into scheduler inputs. Allocation comes from the host ledger, which the plan
 * applier keeps equal to the sum of the hosts' devices in the same transactions that move them.
 * Works on a transaction too (then it sees the transaction's own writes).
 */
export async function loadHostInputs(db: Db, options: LoadHostsOptions = {}): Promise<HostInput[]> {
  const [rows, counts] = await Promise.all([
    selectSchedulingRows(db, options.hostIds),
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
export async function tenantDeviceCounts(db: Db, tenantId: string): Promise<Map<string, number>> {
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
