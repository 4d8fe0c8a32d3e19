// The desired device set of a host, as the agent receives it: every device placed on the host that
// is not being deleted. Read in one snapshot with the host's revision, so a set never carries a
// revision older than its contents. A host being drained runs nothing: its devices are sent STOPPED
// while the drain is in progress (a MIGRATE drain then moves them; their own desired power, and so
// their quota, is unchanged by it, and a StartDevice meanwhile cannot keep one on the host).
import { createHash } from 'node:crypto';
import { create, toBinary } from '@bufbuild/protobuf';
import { agentv1, POWER_STATES, RESTART_POLICIES } from '@cphone/proto';
import type { Kysely } from 'kysely';
import type { DeviceRow } from '../store/devices.js';
import { desiredHead } from '../store/hosts.js';
import type { Database } from '../store/schema.js';
import { agentSpecOf } from './spec-columns.js';

export interface DesiredSet {
  revision: bigint;
  devices: agentv1.DesiredDevice[];
  /** Devices of the host being deleted (not in the set): the agent removes them, or never had them. */
  deleting: string[];
}

const DESIRED_COLUMNS = [
  'id',
  'tenant_id',
  'image_id',
  'image_ref',
  'vcpu_millicores',
  'memory_mib',
  'storage_gib',
  'screen_width_px',
  'screen_height_px',
  'screen_dpi',
  'screen_fps',
  'gpu_mode',
  'properties',
  'spec_revision',
  'desired_power',
  'restart_policy',
  'restart_generation',
] as const;

type DesiredRow = Pick<DeviceRow, (typeof DESIRED_COLUMNS)[number]>;

export function toDesiredDevice(row: DesiredRow, options: { held: boolean }): agentv1.DesiredDevice {
  return create(agentv1.DesiredDeviceSchema, {
    deviceId: row.id,
    tenantId: row.tenant_id,
    spec: agentSpecOf(row),
    specRevision: BigInt(row.spec_revision),
    powerState: POWER_STATES.agent(options.held ? 'stopped' : row.desired_power),
    restartPolicy: RESTART_POLICIES.agent(row.restart_policy),
    restartGeneration: BigInt(row.restart_generation),
  });
}

/** A short digest of what the agent was told about a device, to send only what changed. */
export function fingerprint(device: agentv1.DesiredDevice): string {
  return createHash('sha1').update(toBinary(agentv1.DesiredDeviceSchema, device)).digest('base64');
}

/** Loads the host's desired set and revision (undefined if the host no longer exists). */
export async function loadDesiredSet(db: Kysely<Database>, hostId: string): Promise<DesiredSet | undefined> {
  return db
    .transaction()
    .setIsolationLevel('repeatable read')
    .execute(async (trx) => {
      const host = await desiredHead(trx, hostId);
      if (!host) return undefined;
      const held = host.drain_state === 'in_progress';
      const rows = await trx
        .selectFrom('device')
        .select([...DESIRED_COLUMNS, 'state'])
        .where('host_id', '=', hostId)
        .where('state', '!=', 'deleted')
        .orderBy('id')
        .execute();
      return {
        revision: BigInt(host.desired_revision),
        devices: rows.filter((r) => r.state !== 'deleting').map((row) => toDesiredDevice(row, { held })),
        deleting: rows.filter((r) => r.state === 'deleting').map((r) => r.id),
      };
    });
}
