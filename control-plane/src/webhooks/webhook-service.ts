// WebhookService: subscriptions, secrets and the delivery log. Needs TENANT_ADMIN or above; a
// caller sees the webhooks of its tenant and its descendants, any other is NOT_FOUND.
import type { HandlerContext, ServiceImpl } from '@connectrpc/connect';
import {
  type CreateWebhookRequest,
  type DeleteWebhookRequest,
  type GetWebhookRequest,
  type ListWebhookDeliveriesRequest,
  type ListWebhooksRequest,
  type RedeliverWebhookEventRequest,
  type RotateWebhookSecretRequest,
  type SendTestWebhookEventRequest,
  type UpdateWebhookRequest,
  WebhookDeliveryOutcome,
  WebhookEventType,
  type WebhookService,
  WebhookState,
} from '@cphone/proto';
import type { Kysely } from 'kysely';
import { principalOf } from '../api/context.js';
import { dateOf } from '../api/convert.js';
import { validDisplayName } from '../api/display-name.js';
import { maskPaths } from '../api/field-mask.js';
import { idempotentIn } from '../api/idempotency.js';
import { pageOf, readPage } from '../api/pagination.js';
import type { Principal } from '../auth/principal.js';
import { requireRole, resolveTenant } from '../auth/scope.js';
import type { Clock } from '../clock.js';
import { AlreadyExistsError, InvalidArgumentError, NotFoundError, UnavailableError } from '../errors.js';
import { newId } from '../ids.js';
import type { Database } from '../store/schema.js';
import { dropPending } from './delivery-worker.js';
import { subscribable } from './event-types.js';
import { enqueueWebhookEvent, insertDeliveries } from './outbox.js';
import { newWebhookSecret, type SecretBox } from './secrets.js';
import type { TargetPolicy } from './target-policy.js';
import { attemptToProto, OUTCOMES, webhookToProto } from './webhook-view.js';

/** What the service and the worker share on a replica. */
export interface WebhookRuntime {
  readonly secrets: SecretBox;
  readonly policy: TargetPolicy;
  /** Tells this replica's worker that deliveries were committed. */
  nudge(): void;
}

export interface WebhookServiceDeps {
  readonly db: Kysely<Database>;
  readonly clock: Clock;
  readonly webhooks?: WebhookRuntime | undefined;
}

const DEFAULT_OVERLAP_MS = 86_400_000;
const MAX_OVERLAP_MS = 7 * 86_400_000;

function runtime(deps: WebhookServiceDeps): WebhookRuntime {
  if (!deps.webhooks) throw new UnavailableError('webhooks are not configured on this replica');
  return deps.webhooks;
}

function admin(context: HandlerContext, action: string): Principal {
  const principal = principalOf(context);
  requireRole(principal, 'tenant_admin', action);
  return principal;
}

async function load(deps: WebhookServiceDeps, principal: Principal, webhookId: string) {
  if (!webhookId) throw new InvalidArgumentError('webhook_id', webhookId, 'must be set');
  const row = await deps.db
    .selectFrom('webhook')
    .selectAll()
    .where('id', '=', webhookId)
    .where('tenant_id', 'in', principal.visibleTenants)
    .where('delete_time', 'is', null)
    .executeTakeFirst();
  if (!row) throw new NotFoundError('webhook', webhookId);
  return row;
}

/** The caller, checked for TENANT_ADMIN, and the webhook it names (in its subtree). */
async function owned(deps: WebhookServiceDeps, context: HandlerContext, action: string, webhookId: string) {
  const principal = admin(context, action);
  return { principal, row: await load(deps, principal, webhookId) };
}

async function isPlatform(deps: WebhookServiceDeps, tenantId: string): Promise<boolean> {
  const row = await deps.db.selectFrom('tenant').select('kind').where('id', '=', tenantId).executeTakeFirst();
  return row?.kind === 'platform';
}

export async function createWebhook(
  deps: WebhookServiceDeps,
  req: CreateWebhookRequest,
  context: HandlerContext,
) {
  const principal = admin(context, 'creating webhooks');
  const { secrets, policy } = runtime(deps);
  const tenantId = resolveTenant(principal, req.tenantId);
  const url = (await policy.check(req.url, 'url')).url.href;
  const types = subscribable(req.eventTypes, await isPlatform(deps, tenantId), 'event_types');
  const displayName = req.displayName ? validDisplayName(req.displayName) : new URL(url).host;
  const secret = newWebhookSecret();
  const row = await deps.db.transaction().execute((trx) =>
    idempotentIn(
      trx,
      {
        tenantId: principal.tenantId,
        method: 'WebhookService/CreateWebhook',
        key: req.requestId,
        request: { tenantId, url, types, displayName },
      },
      async (t) => {
        const id = newId('whk');
        const now = deps.clock.now();
        return t
          .insertInto('webhook')
          .values({
            id,
            tenant_id: tenantId,
            display_name: displayName,
            url,
            event_types: JSON.stringify(types),
            secret: secrets.seal(secret, id),
            create_time: now,
            update_time: now,
          })
          .returningAll()
          .executeTakeFirstOrThrow();
      },
      {
        save: (r) => ({ webhookId: r.id }),
        load: () => {
          // The secret was shown to the first request only.
          throw new AlreadyExistsError('webhook', 'request_id', req.requestId);
        },
      },
    ),
  );
  return { webhook: webhookToProto(row, deps.clock.now()), secret };
}

export async function getWebhook(deps: WebhookServiceDeps, req: GetWebhookRequest, context: HandlerContext) {
  const { row } = await owned(deps, context, 'reading webhooks', req.webhookId);
  return { webhook: webhookToProto(row, deps.clock.now()) };
}

export async function listWebhooks(
  deps: WebhookServiceDeps,
  req: ListWebhooksRequest,
  context: HandlerContext,
) {
  const principal = admin(context, 'listing webhooks');
  const tenantId = resolveTenant(principal, req.tenantId);
  const page = readPage(req.pageSize || 100, req.pageToken, { tenantId });
  let query = deps.db
    .selectFrom('webhook')
    .selectAll()
    .where('tenant_id', '=', tenantId)
    .where('delete_time', 'is', null)
    .orderBy('id')
    .limit(page.limit);
  if (page.after) query = query.where('id', '>', page.after);
  const { items, nextPageToken } = pageOf(await query.execute(), page, (r) => r.id);
  const now = deps.clock.now();
  return { webhooks: items.map((r) => webhookToProto(r, now)), nextPageToken };
}

export async function deleteWebhook(
  deps: WebhookServiceDeps,
  req: DeleteWebhookRequest,
  context: HandlerContext,
) {
  const { row } = await owned(deps, context, 'deleting webhooks', req.webhookId);
  const now = deps.clock.now();
  await deps.db.transaction().execute(async (trx) => {
    await trx
      .updateTable('webhook')
      .set({ delete_time: now, update_time: now })
      .where('id', '=', row.id)
      .execute();
    await dropPending(trx, row.id, now, { manualToo: true });
  });
  return {};
}

export async function updateWebhook(
  deps: WebhookServiceDeps,
  req: UpdateWebhookRequest,
  context: HandlerContext,
) {
  const { principal, row } = await owned(deps, context, 'updating webhooks', req.webhook?.webhookId ?? '');
  const paths = maskPaths(req.updateMask, ['display_name', 'url', 'event_types', 'state']);
  const now = deps.clock.now();
  const set: Partial<{
    display_name: string;
    url: string;
    event_types: string;
    state: 'enabled' | 'disabled';
    disabled_reason: string;
    failing_since: null;
  }> = {};
  if (paths.has('display_name'))
    set.display_name = validDisplayName(req.webhook?.displayName ?? '', 'webhook.display_name');
  if (paths.has('url'))
    set.url = (await runtime(deps).policy.check(req.webhook?.url ?? '', 'webhook.url')).url.href;
  if (paths.has('event_types')) {
    set.event_types = JSON.stringify(
      subscribable(
        req.webhook?.eventTypes ?? [],
        await isPlatform(deps, row.tenant_id),
        'webhook.event_types',
      ),
    );
  }
  if (paths.has('state')) {
    const wanted = req.webhook?.state ?? WebhookState.UNSPECIFIED;
    if (wanted === WebhookState.ENABLED) {
      // A fresh start: the failures that disabled it are forgiven.
      Object.assign(set, { state: 'enabled', disabled_reason: '', failing_since: null });
    } else if (wanted === WebhookState.DISABLED) {
      if (row.state !== 'disabled')
        Object.assign(set, { state: 'disabled', disabled_reason: `disabled by ${principal.actor}` });
    } else {
      throw new InvalidArgumentError(
        'webhook.state',
        WebhookState[wanted] ?? wanted,
        'must be ENABLED or DISABLED',
      );
    }
  }
  const updated = await deps.db.transaction().execute(async (trx) => {
    const saved = await trx
      .updateTable('webhook')
      .set({ ...set, update_time: now })
      .where('id', '=', row.id)
      .returningAll()
      .executeTakeFirstOrThrow();
    if (set.state === 'disabled') await dropPending(trx, row.id, now);
    return saved;
  });
  return { webhook: webhookToProto(updated, now) };
}

export async function rotateWebhookSecret(
  deps: WebhookServiceDeps,
  req: RotateWebhookSecretRequest,
  context: HandlerContext,
) {
  const { secrets } = runtime(deps);
  const { row } = await owned(deps, context, 'rotating webhook secrets', req.webhookId);
  const overlapMs = req.overlap
    ? Number(req.overlap.seconds) * 1000 + Math.floor(req.overlap.nanos / 1_000_000)
    : DEFAULT_OVERLAP_MS;
  if (!Number.isFinite(overlapMs) || overlapMs < 0 || overlapMs > MAX_OVERLAP_MS) {
    throw new InvalidArgumentError('overlap', `${overlapMs / 1000}s`, 'must be between 0 and 7 days');
  }
  const now = deps.clock.now();
  const secret = newWebhookSecret();
  const updated = await deps.db
    .updateTable('webhook')
    .set({
      secret: secrets.seal(secret, row.id),
      previous_secret: overlapMs > 0 ? row.secret : null,
      previous_secret_expire_time: overlapMs > 0 ? new Date(now.getTime() + overlapMs) : null,
      update_time: now,
    })
    .where('id', '=', row.id)
    .returningAll()
    .executeTakeFirstOrThrow();
  return { webhook: webhookToProto(updated, now), secret };
}

export async function listWebhookDeliveries(
  deps: WebhookServiceDeps,
  req: ListWebhookDeliveriesRequest,
  context: HandlerContext,
) {
  const principal = admin(context, 'reading webhook deliveries');
  const webhook = req.webhookId ? await load(deps, principal, req.webhookId) : undefined;
  const tenantId = webhook?.tenant_id ?? resolveTenant(principal, req.tenantId);
  const outcome =
    req.outcome === WebhookDeliveryOutcome.UNSPECIFIED
      ? undefined
      : (Object.entries(OUTCOMES).find(([, v]) => v === req.outcome)?.[0] as
          | keyof typeof OUTCOMES
          | undefined);
  if (req.outcome !== WebhookDeliveryOutcome.UNSPECIFIED && !outcome)
    throw new InvalidArgumentError('outcome', req.outcome, 'is not a delivery outcome');
  const start = dateOf(req.startTime);
  const end = dateOf(req.endTime);
  const page = readPage(req.pageSize, req.pageToken, {
    tenantId,
    webhook: req.webhookId,
    event: req.eventId,
    outcome,
    start: start?.toISOString(),
    end: end?.toISOString(),
  });
  let query = deps.db
    .selectFrom('webhook_attempt as a')
    .innerJoin('webhook_delivery as d', 'd.id', 'a.delivery_id')
    .selectAll('a')
    .select(['d.state as delivery_state', 'd.next_attempt_time', 'd.manual'])
    .where('a.tenant_id', '=', tenantId)
    .orderBy('a.id', 'desc')
    .limit(page.limit);
  if (webhook) query = query.where('a.webhook_id', '=', webhook.id);
  if (req.eventId) query = query.where('a.event_id', '=', req.eventId);
  if (outcome) query = query.where('a.outcome', '=', outcome);
  if (start) query = query.where('a.attempt_time', '>=', start);
  if (end) query = query.where('a.attempt_time', '<', end);
  if (page.after) query = query.where('a.id', '<', page.after);
  const { items, nextPageToken } = pageOf(await query.execute(), page, (r) => r.id);
  return { deliveries: items.map(attemptToProto), nextPageToken };
}

export async function redeliverWebhookEvent(
  deps: WebhookServiceDeps,
  req: RedeliverWebhookEventRequest,
  context: HandlerContext,
) {
  const { row: webhook } = await owned(deps, context, 'redelivering webhook events', req.webhookId);
  const earlier = await deps.db
    .selectFrom('webhook_delivery as d')
    .innerJoin('webhook_event as e', 'e.id', 'd.event_id')
    .select(['d.event_type'])
    .where('d.webhook_id', '=', webhook.id)
    .where('d.event_id', '=', req.eventId)
    .executeTakeFirst();
  if (!earlier) throw new NotFoundError('event', req.eventId);
  const id = newId('whd');
  await deps.db.transaction().execute((trx) =>
    insertDeliveries(trx, [
      {
        id,
        webhookId: webhook.id,
        eventId: req.eventId,
        eventType: earlier.event_type,
        manual: true,
        now: deps.clock.now(),
      },
    ]),
  );
  runtime(deps).nudge();
  return { deliveryId: id };
}

export async function sendTestWebhookEvent(
  deps: WebhookServiceDeps,
  req: SendTestWebhookEventRequest,
  context: HandlerContext,
) {
  const { row: webhook } = await owned(deps, context, 'sending webhook test events', req.webhookId);
  const now = deps.clock.now();
  const sent = await deps.db.transaction().execute(async (trx) => {
    const eventId =
      (await enqueueWebhookEvent(
        trx,
        { tenantId: webhook.tenant_id, type: WebhookEventType.TEST },
        { now, onlyWebhookId: webhook.id },
      )) ?? '';
    const delivery = await trx
      .selectFrom('webhook_delivery')
      .select('id')
      .where('event_id', '=', eventId)
      .executeTakeFirstOrThrow();
    return { eventId, deliveryId: delivery.id };
  });
  runtime(deps).nudge();
  return sent;
}

export function webhookService(deps: WebhookServiceDeps): ServiceImpl<typeof WebhookService> {
  return {
    createWebhook: (req, context) => createWebhook(deps, req, context),
    getWebhook: (req, context) => getWebhook(deps, req, context),
    listWebhooks: (req, context) => listWebhooks(deps, req, context),
    deleteWebhook: (req, context) => deleteWebhook(deps, req, context),
    updateWebhook: (req, context) => updateWebhook(deps, req, context),
    rotateWebhookSecret: (req, context) => rotateWebhookSecret(deps, req, context),
    listWebhookDeliveries: (req, context) => listWebhookDeliveries(deps, req, context),
    redeliverWebhookEvent: (req, context) => redeliverWebhookEvent(deps, req, context),
    sendTestWebhookEvent: (req, context) => sendTestWebhookEvent(deps, req, context),
  };
}
