// Test support: host rows as an enrolled, connected agent would leave them.
import type { Insertable, Kysely } from 'kysely';
import type { Principal } from '../auth/principal.js';
import { newHostRow } from '../hosts/host-row.js';
import type { Database, HostTable } from '../store/schema.js';
import { insertTenant } from '../store/tenants.js';

export interface TestHost {
  id: string;
  arch?: string;
  labels?: Record<string, string>;
  connection?: HostTable['connection'];
  /** Whether an agent stream is open now (default: when the connection is ready). */
  connected?: boolean;
  /** The replica named as holding its stream when connected (default TEST_REPLICA). */
  replica?: string;
  cordoned?: boolean;
  vcpu?: number;
  memoryMib?: number;
  storageGib?: number;
  devices?: number;
  overcommitCpu?: number;
  overcommitMemory?: number;
}

/** The replica named as holding test hosts' streams. */
export const TEST_REPLICA = 'test-replica';

export function testHostRow(h: TestHost): Insertable<HostTable> {
  return newHostRow({
    id: h.id,
    name: `${h.id}.rack`,
    arch: h.arch ?? 'arm64',
    labels: JSON.stringify(h.labels ?? {}),
    connection: h.connection ?? 'ready',
    // No agent runs here: the stream record names a replica so the host counts as connected.
    gateway_replica:
      (h.connected ?? (h.connection ?? 'ready') === 'ready') ? (h.replica ?? TEST_REPLICA) : null,
    cordoned: h.cordoned ?? false,
    capacity_vcpu_millicores: h.vcpu ?? 16_000,
    capacity_memory_mib: h.memoryMib ?? 32_768,
    capacity_storage_gib: h.storageGib ?? 1000,
    capacity_devices: h.devices ?? 16,
    overcommit_cpu: h.overcommitCpu ?? 1,
    overcommit_memory: h.overcommitMemory ?? 1,
    agent_version: 'test',
    runtime_kind: 'sim',
    hostname: h.id,
    last_heartbeat_time: h.connection === undefined || h.connection === 'ready' ? new Date() : null,
  });
}

/** Inserts ready hosts (by default 16 vCPU, 32 GiB, 1000 GiB, 16 devices, no overcommit). */
export async function insertHosts(db: Kysely<Database>, hosts: readonly TestHost[]): Promise<void> {
  if (hosts.length === 0) return;
  await db.insertInto('host').values(hosts.map(testHostRow)).execute();
}

/**
 * Every host's allocated_* next to the sums over its devices that hold resources (all but
 * DELETED), and its effective capacity: what the no-overcommit tests compare.
 */
export async function allocationReport(db: Kysely<Database>) {
  const hosts = await db.selectFrom('host').selectAll().orderBy('id').execute();
  const sums = await db
    .selectFrom('device')
    .select((eb) => [
      'host_id',
      eb.fn.sum<number>('vcpu_millicores').as('cpu'),
      eb.fn.sum<number>('memory_mib').as('memory'),
      eb.fn.sum<number>('storage_gib').as('storage'),
      eb.fn.countAll<number>().as('devices'),
    ])
    .where('state', '!=', 'deleted')
    .where('host_id', 'is not', null)
    .groupBy('host_id')
    .execute();
  const byHost = new Map(sums.map((s) => [s.host_id, s]));
  return hosts.map((h) => {
    const s = byHost.get(h.id);
    return {
      id: h.id,
      allocated: {
        cpu: h.allocated_vcpu_millicores,
        memory: h.allocated_memory_mib,
        storage: h.allocated_storage_gib,
        devices: h.allocated_devices,
      },
      devices: {
        cpu: Number(s?.cpu ?? 0),
        memory: Number(s?.memory ?? 0),
        storage: Number(s?.storage ?? 0),
        devices: Number(s?.devices ?? 0),
      },
      capacity: {
        cpu: h.capacity_vcpu_millicores * h.overcommit_cpu,
        memory: h.capacity_memory_mib * h.overcommit_memory,
        storage: h.capacity_storage_gib,
        devices: h.capacity_devices,
      },
      desiredRevision: h.desired_revision,
    };
  });
}

/** A platform admin who sees the platform tenant and its reseller `acme`. */
export const TEST_PRINCIPAL: Principal = {
  actor: 'k',
  keyId: 'k',
  tenantId: 'platform',
  role: 'platform_admin',
  visibleTenants: ['platform', 'acme'],
};

/** The platform tenant, its reseller `acme` and a public arm64 image `img`, for placing on. */
export async function seedTenantsAndImage(db: Kysely<Database>): Promise<void> {
  const now = new Date();
  await insertTenant(db, {
    id: 'platform',
    parent_id: null,
    kind: 'platform',
    display_name: 'P',
    update_time: now,
  });
  await insertTenant(db, {
    id: 'acme',
    parent_id: 'platform',
    kind: 'reseller',
    display_name: 'A',
    update_time: now,
  });
  await db
    .insertInto('image')
    .values({
      id: 'img',
      tenant_id: null,
      display_name: 'img',
      image_ref: 'redroid/redroid:14.0.0-latest',
      android_version: '14',
      arches: JSON.stringify(['arm64']),
      required_labels: '{}',
      default_spec: JSON.stringify({ vcpuMillicores: 1000, memoryMib: 1024, storageGib: 4 }),
      min_vcpu_millicores: 0,
      min_memory_mib: 0,
      min_storage_gib: 0,
      update_time: now,
    })
    .execute();
}
