// The host row as enrollment first writes it, shared by enrollment and by the test and benchmark
// setups that put hosts straight into the store, so a new column gets its default in one place.
import type { Insertable } from 'kysely';
import type { HostTable } from '../store/schema.js';

/** The columns every host needs; any other column given overrides the enrollment default. */
export type HostRowInit = Pick<Insertable<HostTable>, 'id' | 'name' | 'arch'> &
  Partial<Insertable<HostTable>>;

/**
 * A newly enrolled host: not connected yet, no capacity (the agent reports the real capacity in its
 * Hello; until then nothing fits there), no overcommit, nothing allocated, no labels.
 */
export function newHostRow(init: HostRowInit): Insertable<HostTable> {
  return {
    labels: '{}',
    connection: 'new',
    cordoned: false,
    drain_mode: null,
    drain_start_time: null,
    capacity_vcpu_millicores: 0,
    capacity_memory_mib: 0,
    capacity_storage_gib: 0,
    capacity_devices: 0,
    overcommit_cpu: 1,
    overcommit_memory: 1,
    allocated_vcpu_millicores: 0,
    allocated_memory_mib: 0,
    allocated_storage_gib: 0,
    allocated_devices: 0,
    agent_version: '',
    runtime_kind: '',
    hostname: '',
    load: '{}',
    last_heartbeat_time: null,
    unreachable_since: null,
    desired_revision: 0,
    update_time: new Date(),
    ...init,
  };
}
