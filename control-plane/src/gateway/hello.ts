// What a Hello changes in the store: the host is ready and its self-description is refreshed.
// Enrolled labels stay authoritative (the scheduler matches on them); the agent's are kept beside.
import { agentv1 } from '@cphone/proto';
import type { Transaction } from 'kysely';
import { FailedPreconditionError, NotFoundError } from '../errors.js';
import type { Database, HostConnection } from '../store/schema.js';

export const MIN_PROTOCOL_VERSION = agentv1.ProtocolVersion.V1;
export const MAX_PROTOCOL_VERSION = agentv1.ProtocolVersion.V1;

export function checkProtocolVersion(version: number): void {
  if (version < MIN_PROTOCOL_VERSION || version > MAX_PROTOCOL_VERSION) {
    throw new FailedPreconditionError(
      `protocol_version ${version} is not supported: this control plane accepts ${MIN_PROTOCOL_VERSION}..${MAX_PROTOCOL_VERSION}`,
    );
  }
}

const MIB = 1024n * 1024n;
const GIB = MIB * 1024n;

/** HostLoad as protobuf JSON (camelCase) with plain numbers. */
export function loadJson(load: agentv1.HostLoad | undefined): Record<string, number> {
  if (!load) return {};
  return {
    cpuPercent: load.cpuPercent,
    loadAverage1m: load.loadAverage1m,
    memoryUsedBytes: Number(load.memoryUsedBytes),
    memoryTotalBytes: Number(load.memoryTotalBytes),
    diskUsedBytes: Number(load.diskUsedBytes),
    diskTotalBytes: Number(load.diskTotalBytes),
    runningDevices: load.runningDevices,
  };
}

/**
 * Marks the host ready, held by this replica, and records the Hello's facts, inside the caller's
 * transaction; returns the connection state it had and the replica that held its stream before.
 */
export async function recordHello(
  trx: Transaction<Database>,
  hello: agentv1.Hello,
  now: Date,
  replicaId: string,
): Promise<{ connection: HostConnection; heldBy: string | null }> {
  const before = await trx
    .selectFrom('host')
    .select(['connection', 'gateway_replica'])
    .where('id', '=', hello.hostId)
    .forUpdate()
    .executeTakeFirst();
  if (!before) throw new NotFoundError('host', hello.hostId);
  const capacity = hello.capacity;
  await trx
    .updateTable('host')
    .set({
      connection: 'ready',
      last_heartbeat_time: now,
      unreachable_since: null,
      agent_version: hello.agentVersion,
      runtime_kind: hello.runtimeKind,
      hostname: hello.hostname,
      kernel_version: hello.kernelVersion,
      agent_instance_id: hello.agentInstanceId,
      gateway_replica: replicaId,
      agent_labels: JSON.stringify(hello.labels),
      ...(hello.arch ? { arch: hello.arch } : {}),
      ...(capacity && capacity.vcpuMillicores > 0n
        ? {
            capacity_vcpu_millicores: Number(capacity.vcpuMillicores),
            capacity_memory_mib: Number(capacity.memoryBytes / MIB),
            capacity_storage_gib: Number(capacity.storageBytes / GIB),
            capacity_devices: capacity.devices,
          }
        : {}),
      update_time: now,
    })
    .where('id', '=', hello.hostId)
    .execute();
  return { connection: before.connection, heldBy: before.gateway_replica };
}
