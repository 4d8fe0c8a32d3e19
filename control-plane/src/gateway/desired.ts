// The desired device set of a host, as the agent receives it: every device placed on the host that
// is not being deleted. Read in one snapshot with the host's revision, so a set never carries a
// revision older than its contents.
import { createHash } from 'node:crypto';
import { create, fromJson, type JsonValue, toBinary } from '@bufbuild/protobuf';
import { agentv1, POWER_STATES, RESTART_POLICIES } from '@cphone/proto';
import type { Kysely } from 'kysely';
import type { Database, DeviceTable } from '../store/schema.js';

export interface DesiredSet {
  revision: bigint;
  devices: agentv1.DesiredDevice[];
}

interface DesiredRow {
  id: string;
  tenant_id: string;
  spec: Record<string, unknown>;
  spec_revision: number;
  desired_power: DeviceTable['desired_power'];
  restart_policy: DeviceTable['restart_policy'];
  restart_generation: number;
}

export function toDesiredDevice(row: DesiredRow): agentv1.DesiredDevice {
  return create(agentv1.DesiredDeviceSchema, {
    deviceId: row.id,
    tenantId: row.tenant_id,
    // The stored spec is the API's; its image_id has no place in the agent's copy and is dropped.
    spec: fromJson(agentv1.DeviceSpecSchema, row.spec as JsonValue, { ignoreUnknownFields: true }),
    specRevision: BigInt(row.spec_revision),
    powerState: POWER_STATES.agent(row.desired_power),
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
      const host = await trx
        .selectFrom('host')
        .select('desired_revision')
        .where('id', '=', hostId)
        .executeTakeFirst();
      if (!host) return undefined;
      const rows = await trx
        .selectFrom('device')
        .select([
          'id',
          'tenant_id',
          'spec',
          'spec_revision',
          'desired_power',
          'restart_policy',
          'restart_generation',
        ])
        .where('host_id', '=', hostId)
        .where('state', 'not in', ['deleting', 'deleted'])
        .orderBy('id')
        .execute();
      return { revision: BigInt(host.desired_revision), devices: rows.map(toDesiredDevice) };
    });
}
