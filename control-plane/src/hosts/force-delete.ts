import type { Transaction } from 'kysely';
import { canTransition, transition } from '../devices/state-machine.js';
import type { Database } from '../store/schema.js';

/**
 * DeleteHost with force: the host's devices lose their host. A device being deleted is done (its
 * container goes with the host); any other placed device becomes LOST, from where re-placement
 * (LOST -> SCHEDULED) moves it to another host.
 */
export async function forceRemoveDevices(
  trx: Transaction<Database>,
  hostId: string,
  now: Date,
): Promise<void> {
  const devices = await trx
    .selectFrom('device')
    .select(['id', 'tenant_id', 'state'])
    .where('host_id', '=', hostId)
    .where('delete_time', 'is', null)
    .where('state', '!=', 'deleted')
    .forUpdate()
    .execute();
  for (const device of devices) {
    const to = device.state === 'deleting' ? 'deleted' : 'lost';
    if (canTransition(device.state, to)) {
      await transition(trx, {
        deviceId: device.id,
        tenantId: device.tenant_id,
        from: device.state,
        to,
        reason: 'HostDeleted',
        message: `host ${hostId} was deleted`,
        set: { host_id: null },
        now,
      });
    } else {
      await trx
        .updateTable('device')
        .set({ host_id: null, update_time: now })
        .where('id', '=', device.id)
        .execute();
    }
  }
}
