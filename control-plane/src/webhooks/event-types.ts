// Event types: the proto's enum, the names the store keeps, and which device changes produce which.
import { WebhookEventType } from '@cphone/proto';
import { InvalidArgumentError } from '../errors.js';
import type { DeviceStateName } from '../store/schema.js';

const NAMES: Record<Exclude<WebhookEventType, WebhookEventType.UNSPECIFIED>, string> = {
  [WebhookEventType.DEVICE_CREATED]: 'device_created',
  [WebhookEventType.DEVICE_STATE_CHANGED]: 'device_state_changed',
  [WebhookEventType.DEVICE_DELETED]: 'device_deleted',
  [WebhookEventType.QUOTA_EXCEEDED]: 'quota_exceeded',
  [WebhookEventType.HOST_UNREACHABLE]: 'host_unreachable',
  [WebhookEventType.HOST_READY]: 'host_ready',
  [WebhookEventType.DEVICE_RUNNING]: 'device_running',
  [WebhookEventType.DEVICE_STOPPED]: 'device_stopped',
  [WebhookEventType.DEVICE_LOST]: 'device_lost',
  [WebhookEventType.QUOTA_THRESHOLD_REACHED]: 'quota_threshold_reached',
  [WebhookEventType.STATEMENT_CLOSED]: 'statement_closed',
  [WebhookEventType.HOST_DRAINED]: 'host_drained',
  [WebhookEventType.WEBHOOK_DISABLED]: 'webhook_disabled',
  [WebhookEventType.TEST]: 'test',
};

const BY_NAME = new Map(
  Object.entries(NAMES).map(([value, name]) => [name, Number(value) as WebhookEventType]),
);

/** Fleet events: only webhooks of the platform tenant may subscribe to them. */
const PLATFORM_ONLY: ReadonlySet<WebhookEventType> = new Set([
  WebhookEventType.HOST_UNREACHABLE,
  WebhookEventType.HOST_READY,
  WebhookEventType.HOST_DRAINED,
]);

export function eventTypeName(type: WebhookEventType): string {
  const name = NAMES[type as keyof typeof NAMES];
  if (!name) throw new InvalidArgumentError('type', type, 'is not a webhook event type');
  return name;
}

/** UNSPECIFIED for a name this version does not know. */
export function eventTypeOf(name: string): WebhookEventType {
  return BY_NAME.get(name) ?? WebhookEventType.UNSPECIFIED;
}

/** The subscription's type names: at least one, each known and subscribable by this tenant. */
export function subscribable(types: readonly WebhookEventType[], platform: boolean, field: string): string[] {
  if (types.length === 0) throw new InvalidArgumentError(field, '[]', 'must name at least one event type');
  const names = new Set<string>();
  for (const type of types) {
    const label = WebhookEventType[type] ?? type;
    if (type === WebhookEventType.UNSPECIFIED || type === WebhookEventType.TEST || !(type in NAMES))
      throw new InvalidArgumentError(field, label, 'is not an event type a webhook can subscribe to');
    if (PLATFORM_ONLY.has(type) && !platform)
      throw new InvalidArgumentError(field, label, 'is for webhooks of the platform tenant only');
    names.add(eventTypeName(type));
  }
  return [...names].sort();
}

/** The events a device change produces: created, or any change plus the state's own event. */
export function deviceEventTypes(from: DeviceStateName | null, to: DeviceStateName): WebhookEventType[] {
  if (from === null) return [WebhookEventType.DEVICE_CREATED];
  const own: Partial<Record<DeviceStateName, WebhookEventType>> = {
    running: WebhookEventType.DEVICE_RUNNING,
    stopped: WebhookEventType.DEVICE_STOPPED,
    deleted: WebhookEventType.DEVICE_DELETED,
    lost: WebhookEventType.DEVICE_LOST,
  };
  const specific = own[to];
  return specific === undefined
    ? [WebhookEventType.DEVICE_STATE_CHANGED]
    : [WebhookEventType.DEVICE_STATE_CHANGED, specific];
}
