// The outbox: an event is written in the transaction of the change it reports, with its id, and
// fanned out there and then into one delivery per matching webhook. So a change that commits has
// its event (exactly once, with a stable id) and one that rolls back has none; the delivery worker
// sends what committed. Matching webhooks are the enabled ones, of the event's tenant or of any
// ancestor (a reseller hears of its customers), subscribed to the event's type. An event no
// webhook wants is not written at all.
import { create, type MessageInitShape, toJsonString } from '@bufbuild/protobuf';
import { timestampFromDate } from '@bufbuild/protobuf/wkt';
import { WebhookEventSchema, type WebhookEventType } from '@cphone/proto';
import { type Insertable, sql, type Transaction } from 'kysely';
import { newId } from '../ids.js';
import type { Database, WebhookEventTable } from '../store/schema.js';
import { eventTypeName } from './event-types.js';

/** The payload fields of WebhookEvent (device, device_event, host, quota_threshold, statement ...). */
export type WebhookPayload = Omit<
  MessageInitShape<typeof WebhookEventSchema>,
  '$typeName' | 'eventId' | 'type' | 'tenantId' | 'createTime'
>;

export type WebhookEventInput = WebhookPayload & {
  /** The tenant the event belongs to (its webhooks and its ancestors' receive it). */
  readonly tenantId: string;
  readonly type: WebhookEventType;
  /** When it happened; default now. */
  readonly time?: Date | undefined;
};

export interface EnqueueOptions {
  /** The transaction's time, for the delivery rows; default now. */
  readonly now?: Date | undefined;
  /** Only this webhook, whatever its state and subscription (test events). */
  readonly onlyWebhookId?: string | undefined;
}

interface Subscriber {
  readonly origin: string;
  readonly id: string;
  readonly tenant_id: string;
  readonly event_types: string[];
}

/** The enabled webhooks of each tenant and its ancestors, keyed by the tenant. */
async function subscribers(trx: Transaction<Database>, tenantIds: readonly string[]) {
  const byTenant = new Map<string, Subscriber[]>();
  if (tenantIds.length === 0) return byTenant;
  const result = await sql<Subscriber>`
    with recursive up(origin, id, parent_id) as (
      select id, id, parent_id from tenant where id in (${sql.join(tenantIds)})
      union all
      select up.origin, t.id, t.parent_id from tenant t join up on t.id = up.parent_id
    )
    select up.origin, w.id, w.tenant_id, w.event_types from webhook w join up on w.tenant_id = up.id
    where w.state = 'enabled' and w.delete_time is null
    order by w.id`.execute(trx);
  for (const row of result.rows) {
    const list = byTenant.get(row.origin) ?? [];
    list.push(row);
    byTenant.set(row.origin, list);
  }
  return byTenant;
}

/** The webhooks among `tenantIds`' subscribers that want events of `type`. */
export async function webhooksFor(
  trx: Transaction<Database>,
  tenantIds: readonly string[],
): Promise<(tenantId: string, type: WebhookEventType) => Subscriber[]> {
  const byTenant = await subscribers(trx, [...new Set(tenantIds)]);
  return (tenantId, type) => {
    const name = eventTypeName(type);
    return (byTenant.get(tenantId) ?? []).filter((w) => w.event_types.includes(name));
  };
}

export interface BuiltEvent {
  readonly input: WebhookEventInput;
  readonly webhookIds: readonly string[];
}

/** Writes events whose webhooks are already known, and their deliveries. Returns the event ids. */
export async function writeEvents(
  trx: Transaction<Database>,
  events: readonly BuiltEvent[],
  options: EnqueueOptions = {},
): Promise<string[]> {
  const now = options.now ?? new Date();
  const rows: Insertable<WebhookEventTable>[] = [];
  const deliveries: DeliveryDraft[] = [];
  const ids: string[] = [];
  for (const { input, webhookIds } of events) {
    if (webhookIds.length === 0) continue;
    const { tenantId, type, time, ...payload } = input;
    const id = newId('evt');
    const created = time ?? now;
    const body = toJsonString(
      WebhookEventSchema,
      create(WebhookEventSchema, {
        ...payload,
        eventId: id,
        type,
        tenantId,
        createTime: timestampFromDate(created),
      }),
    );
    const name = eventTypeName(type);
    rows.push({ id, tenant_id: tenantId, type: name, body, create_time: created });
    for (const webhookId of webhookIds) {
      deliveries.push({
        id: newId('whd'),
        webhookId,
        eventId: id,
        eventType: name,
        manual: options.onlyWebhookId !== undefined,
        now,
      });
    }
    ids.push(id);
  }
  if (rows.length === 0) return ids;
  await trx.insertInto('webhook_event').values(rows).execute();
  // The webhook's tenant is filled from the webhook row, so delivery logs are scoped by it.
  await insertDeliveries(trx, deliveries);
  return ids;
}

/** A delivery to write: due at once. */
export interface DeliveryDraft {
  readonly id: string;
  readonly webhookId: string;
  readonly eventId: string;
  readonly eventType: string;
  readonly manual: boolean;
  readonly now: Date;
}

/** Inserts deliveries, each under its webhook's tenant (read in the same statement). */
export async function insertDeliveries(
  trx: Transaction<Database>,
  deliveries: readonly DeliveryDraft[],
): Promise<void> {
  if (deliveries.length === 0) return;
  const values = deliveries.map(
    (d) =>
      sql`(${d.id}, ${d.webhookId}, ${d.eventId}, ${d.eventType}, ${d.manual}::boolean, ${d.now.toISOString()}::timestamptz)`,
  );
  await sql`
    insert into webhook_delivery
      (id, webhook_id, tenant_id, event_id, event_type, manual, next_attempt_time, create_time, update_time)
    select v.id, v.webhook_id, w.tenant_id, v.event_id, v.event_type, v.manual, v.now, v.now, v.now
    from (values ${sql.join(values)}) as v(id, webhook_id, event_id, event_type, manual, now)
    join webhook w on w.id = v.webhook_id`.execute(trx);
}

/**
 * Writes webhook events inside the caller's transaction: each is delivered to the enabled webhooks
 * of its tenant and of the tenant's ancestors that subscribe to its type, once the transaction
 * commits (nothing is sent if it rolls back). Returns the event ids, in order; undefined for an
 * event no webhook wants (nothing is written for it).
 */
export async function enqueueWebhookEvents(
  trx: Transaction<Database>,
  events: readonly WebhookEventInput[],
  options: EnqueueOptions = {},
): Promise<(string | undefined)[]> {
  if (events.length === 0) return [];
  const only = options.onlyWebhookId;
  const match = only
    ? undefined
    : await webhooksFor(
        trx,
        events.map((e) => e.tenantId),
      );
  const built = events.map((input) => ({
    input,
    webhookIds: only ? [only] : (match?.(input.tenantId, input.type) ?? []).map((w) => w.id),
  }));
  const ids = await writeEvents(trx, built, options);
  let next = 0;
  return built.map((b) => (b.webhookIds.length > 0 ? ids[next++] : undefined));
}

/**
 * One event: `enqueueWebhookEvent(trx, { tenantId, type, ...payload })`, e.g.
 * `{ tenantId, type: WebhookEventType.STATEMENT_CLOSED, statement: { tenantId, month, statementId,
 * totalAmount, currency } }`. Returns its id, or undefined when no webhook wants it.
 */
export async function enqueueWebhookEvent(
  trx: Transaction<Database>,
  event: WebhookEventInput,
  options: EnqueueOptions = {},
): Promise<string | undefined> {
  const [id] = await enqueueWebhookEvents(trx, [event], options);
  return id;
}
