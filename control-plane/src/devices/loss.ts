import type { Kysely } from 'kysely';
import { lockDevices } from '../store/devices.js';
import { lockIfUnreachableSince } from '../store/hosts.js';
import type { Database } from '../store/schema.js';
import { PLACED_STATES, transition } from './state-machine.js';

/**
 * Moves the host's placed devices to LOST if the host is still unreachable since at or before
 * `cutoff`. Their resources stay allocated on the host: it may come back with them. Locks the
 * devices, then the host (the order every writer keeps), so a Hello making the host ready again
 * is ordered against it.
 */
export async function markHostDevicesLost(
  db: Kysely<Database>,
  hostId: string,
  cutoff: Date,
  now: Date,
): Promise<string[]> {
  return db.transaction().execute(async (trx) => {
    const placed = await trx
      .selectFrom('device')
      .select('id')
      .where('host_id', '=', hostId)
      .where('state', 'in', PLACED_STATES)
      .execute();
    const devices = (
      await lockDevices(
        trx,
        placed.map((d) => d.id),
      )
    ).filter((d) => d.host_id === hostId && PLACED_STATES.includes(d.state));
    const host = await lockIfUnreachableSince(trx, hostId, cutoff);
    if (!host) return [];
    for (const device of devices) {
      await transition(trx, {
        deviceId: device.id,
        tenantId: device.tenant_id,
        from: device.state,
        to: 'lost',
        reason: 'HOST_UNREACHABLE',
        message: `host ${hostId} unreachable since ${host.unreachable_since?.toISOString()}`,
        set: { adb_endpoint: '' },
        now,
      });
    }
    return devices.map((d) => d.id);
  });
}
