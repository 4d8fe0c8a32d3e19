import type { Transaction } from 'kysely';
import { canTransition, transition } from '../devices/state-machine.js';
import { type AppliedPlan, applyPlan } from '../placement/applier.js';
import { lockDevices } from '../store/devices.js';
import type { Database } from '../store/schema.js';

/**
 * DeleteHost with force, in the caller's transaction (before it deletes the host row): the host's
 * devices lose their host through a plan releasing them. A device being deleted is done (its
 * container goes with the host); any other placed device becomes LOST, from where a re-placement
 * (LOST -> SCHEDULED) could move it to another host.
 */
export async function forceRemoveDevices(
  trx: Transaction<Database>,
  hostId: string,
  now: Date,
): Promise<AppliedPlan> {
  const ids = await trx
    .selectFrom('device')
    .select('id')
    .where('host_id', '=', hostId)
    .where('state', '!=', 'deleted')
    .execute();
  const devices = (
    await lockDevices(
      trx,
      ids.map((d) => d.id),
    )
  ).filter((d) => d.host_id === hostId && d.state !== 'deleted');
  for (const device of devices) {
    const to = device.state === 'deleting' ? 'deleted' : 'lost';
    if (!canTransition(device.state, to)) continue;
    await transition(trx, {
      deviceId: device.id,
      tenantId: device.tenant_id,
      from: device.state,
      to,
      reason: 'HOST_DELETED',
      message: `host ${hostId} was deleted`,
      now,
    });
  }
  return applyPlan(
    trx,
    {
      releases: devices.map((d) => ({
        deviceId: d.id,
        hostId,
        resources: {
          vcpuMillicores: d.vcpu_millicores,
          memoryMib: d.memory_mib,
          storageGib: d.storage_gib,
          devices: 1,
        },
        unassign: true,
      })),
    },
    { now },
  );
}
