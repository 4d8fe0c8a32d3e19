// Webhook rows as the API shows them.
import { create } from '@bufbuild/protobuf';
import {
  type Webhook,
  type WebhookDelivery,
  WebhookDeliveryOutcome,
  WebhookDeliverySchema,
  WebhookDeliveryState,
  WebhookSchema,
  WebhookState,
} from '@cphone/proto';
import type { Selectable } from 'kysely';
import { compact, ts } from '../api/convert.js';
import type {
  WebhookAttemptTable,
  WebhookDeliveryStateName,
  WebhookOutcomeName,
  WebhookTable,
} from '../store/schema.js';
import { eventTypeOf } from './event-types.js';

export type WebhookRow = Selectable<WebhookTable>;

export const OUTCOMES: Record<WebhookOutcomeName, WebhookDeliveryOutcome> = {
  succeeded: WebhookDeliveryOutcome.SUCCEEDED,
  http_error: WebhookDeliveryOutcome.HTTP_ERROR,
  network_error: WebhookDeliveryOutcome.NETWORK_ERROR,
  refused: WebhookDeliveryOutcome.REFUSED,
};

const DELIVERY_STATES: Record<WebhookDeliveryStateName, WebhookDeliveryState> = {
  pending: WebhookDeliveryState.PENDING,
  succeeded: WebhookDeliveryState.SUCCEEDED,
  failed: WebhookDeliveryState.FAILED,
  dropped: WebhookDeliveryState.DROPPED,
};

export function webhookToProto(row: WebhookRow, now: Date): Webhook {
  const overlap = row.previous_secret_expire_time;
  return create(
    WebhookSchema,
    compact({
      webhookId: row.id,
      tenantId: row.tenant_id,
      displayName: row.display_name,
      url: row.url,
      eventTypes: row.event_types.map(eventTypeOf),
      createTime: ts(row.create_time),
      updateTime: ts(row.update_time),
      state: row.state === 'enabled' ? WebhookState.ENABLED : WebhookState.DISABLED,
      disabledReason: row.disabled_reason,
      failingSinceTime: ts(row.failing_since),
      previousSecretExpireTime: row.previous_secret && overlap && overlap > now ? ts(overlap) : undefined,
    }),
  );
}

export type AttemptRow = Selectable<WebhookAttemptTable> & {
  delivery_state: WebhookDeliveryStateName;
  next_attempt_time: Date;
  manual: boolean;
};

export function attemptToProto(row: AttemptRow): WebhookDelivery {
  return create(
    WebhookDeliverySchema,
    compact({
      deliveryId: row.delivery_id,
      webhookId: row.webhook_id,
      tenantId: row.tenant_id,
      eventId: row.event_id,
      eventType: eventTypeOf(row.event_type),
      attempt: row.attempt,
      attemptTime: ts(row.attempt_time),
      outcome: OUTCOMES[row.outcome],
      httpStatus: row.http_status,
      error: row.error,
      responseExcerpt: row.response_excerpt,
      duration: {
        seconds: BigInt(Math.floor(row.duration_ms / 1000)),
        nanos: (row.duration_ms % 1000) * 1_000_000,
      },
      deliveryState: DELIVERY_STATES[row.delivery_state],
      nextAttemptTime: row.delivery_state === 'pending' ? ts(row.next_attempt_time) : undefined,
      manual: row.manual,
    }),
  );
}
