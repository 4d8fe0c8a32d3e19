// How a host row reads on the wire. Its summary state is defined once, in SQL (store/hosts.ts).
import { create, fromJson, type JsonValue } from '@bufbuild/protobuf';
import {
  DrainMode,
  DrainState,
  type DrainStatus,
  DrainStatusSchema,
  type Host,
  type HostLoad,
  HostLoadSchema,
  HostResourcesSchema,
  HostSchema,
  HostState,
} from '@cphone/proto';
import type { Selectable } from 'kysely';
import { compact, ts } from '../api/convert.js';
import type { HostRecord, HostStateName } from '../store/hosts.js';
import type { DrainStateName, HostTable } from '../store/schema.js';

export const HOST_STATE_TO_PROTO: Record<HostStateName, HostState> = {
  revoked: HostState.REVOKED,
  pending: HostState.PENDING,
  unreachable: HostState.UNREACHABLE,
  draining: HostState.DRAINING,
  cordoned: HostState.CORDONED,
  ready: HostState.READY,
};

export type HostRow = HostRecord;
export type { HostStateName };

const MIB = 1024n * 1024n;
const GIB = MIB * 1024n;

function resources(vcpu: number, memoryMib: number, storageGib: number, devices: number) {
  return create(HostResourcesSchema, {
    vcpuMillicores: BigInt(Math.floor(vcpu)),
    memoryBytes: BigInt(Math.floor(memoryMib)) * MIB,
    storageBytes: BigInt(Math.floor(storageGib)) * GIB,
    devices,
  });
}

const DRAIN_STATE_TO_PROTO: Record<DrainStateName, DrainState> = {
  in_progress: DrainState.IN_PROGRESS,
  completed: DrainState.COMPLETED,
  failed: DrainState.FAILED,
  cancelled: DrainState.CANCELLED,
};

/** What a MIGRATE drain has moved and could not move (hosts/migrate.ts). */
export interface MigrateCounts {
  migrated: number;
  failures: readonly { deviceId: string; reason: string }[];
}

/** The drain's progress; undefined when the host was never drained. */
export function drainStatusOf(
  row: Selectable<HostTable>,
  remaining: number,
  migrate?: MigrateCounts,
): DrainStatus | undefined {
  if (!row.drain_state || !row.drain_last_mode) return undefined;
  return create(
    DrainStatusSchema,
    compact({
      mode: row.drain_last_mode === 'migrate' ? DrainMode.MIGRATE : DrainMode.STOP,
      state: DRAIN_STATE_TO_PROTO[row.drain_state],
      reason: row.drain_reason,
      devicesTotal: row.drain_devices_total,
      devicesRemaining: remaining,
      startTime: ts(row.drain_start_time),
      deadline: ts(row.drain_deadline),
      endTime: ts(row.drain_end_time),
      devicesMigrated: migrate?.migrated,
      devicesFailed: migrate?.failures.length,
      failures: migrate?.failures.map((f) => ({ deviceId: f.deviceId, reason: f.reason })),
    }),
  );
}

function loadOf(load: Record<string, unknown>): HostLoad | undefined {
  if (Object.keys(load).length === 0) return undefined;
  try {
    // Stored as the HostLoad's protobuf JSON; fromJson reads both JSON and proto field names.
    return fromJson(HostLoadSchema, load as JsonValue, { ignoreUnknownFields: true });
  } catch {
    return undefined;
  }
}

/**
 * The wire Host. `drainRemaining` is the live count of devices the drain still waits for; `migrate`
 * the progress of a MIGRATE drain.
 */
export function hostToProto(row: HostRow, drainRemaining = 0, migrate?: MigrateCounts): Host {
  return create(
    HostSchema,
    compact({
      hostId: row.id,
      name: row.name,
      labels: row.labels,
      arch: row.arch,
      state: HOST_STATE_TO_PROTO[row.state],
      cordoned: row.cordoned,
      // A stream is open now on some replica (a replica clears it when the stream ends, the leader
      // when the replica that held it is gone).
      connected: row.connection === 'ready' && row.gateway_replica !== null,
      agentVersion: row.agent_version,
      protocolVersion: row.protocol_version,
      hostname: row.hostname,
      runtimeKind: row.runtime_kind,
      capacity: resources(
        row.capacity_vcpu_millicores,
        row.capacity_memory_mib,
        row.capacity_storage_gib,
        row.capacity_devices,
      ),
      allocatable: resources(
        row.capacity_vcpu_millicores * row.overcommit_cpu,
        row.capacity_memory_mib * row.overcommit_memory,
        row.capacity_storage_gib,
        row.capacity_devices,
      ),
      allocated: resources(
        row.allocated_vcpu_millicores,
        row.allocated_memory_mib,
        row.allocated_storage_gib,
        row.allocated_devices,
      ),
      overcommit: { cpu: row.overcommit_cpu, memory: row.overcommit_memory },
      load: loadOf(row.load),
      lastHeartbeatTime: ts(row.last_heartbeat_time),
      drain: drainStatusOf(row, drainRemaining, migrate),
      createTime: ts(row.create_time),
      updateTime: ts(row.update_time),
    }),
  );
}
