// Device changes as webhook events: the state machine hands over the device_event rows it wrote,
// and the events matching webhooks want are written in the same transaction, each with the device
// as the change left it.
import type { Selectable, Transaction } from 'kysely';
import { deviceToProto, eventToProto } from '../devices/convert.js';
import type { Database, DeviceEventTable } from '../store/schema.js';
import { deviceEventTypes } from './event-types.js';
import { webhooksFor, writeEvents } from './outbox.js';

export async function enqueueDeviceEvents(
  trx: Transaction<Database>,
  events: readonly Selectable<DeviceEventTable>[],
  now: Date,
): Promise<void> {
  if (events.length === 0) return;
  const match = await webhooksFor(
    trx,
    events.map((e) => e.tenant_id),
  );
  const wanted = events.flatMap((event) =>
    deviceEventTypes(event.from_state, event.to_state).map((type) => ({
      event,
      type,
      webhookIds: match(event.tenant_id, type).map((w) => w.id),
    })),
  );
  const sent = wanted.filter((w) => w.webhookIds.length > 0);
  if (sent.length === 0) return;
  const ids = [...new Set(sent.map((w) => w.event.device_id))];
  const devices = new Map(
    (await trx.selectFrom('device').selectAll().where('id', 'in', ids).execute()).map((d) => [d.id, d]),
  );
  await writeEvents(
    trx,
    sent.flatMap(({ event, type, webhookIds }) => {
      const device = devices.get(event.device_id);
      if (!device) return [];
      return [
        {
          input: {
            tenantId: event.tenant_id,
            type,
            time: event.create_time,
            device: deviceToProto(device, { operator: false }),
            deviceEvent: eventToProto(event),
          },
          webhookIds,
        },
      ];
    }),
    { now },
  );
}
