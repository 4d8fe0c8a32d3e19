// The database as kysely sees it: one interface per table. Times are timestamptz (Date), JSON columns
// are jsonb, int8 columns arrive as numbers (see database.ts).
import type { GpuModeName, PowerStateName, RestartPolicyName } from '@cphone/proto';
import type { ColumnType, Generated, JSONColumnType } from 'kysely';

export type { GpuModeName, RestartPolicyName };
/** Desired power, spelled as the device contract spells it (@cphone/proto). */
export type PowerName = PowerStateName;

type Timestamp = ColumnType<Date, Date | string, Date | string>;
type CreatedAt = ColumnType<Date, Date | string | undefined, never>;
type Json<T extends object | null> = JSONColumnType<T, string, string>;
type StringMap = Record<string, string>;
/** A column with a default in the schema: optional on insert. */
type Defaulted<T> = ColumnType<T, T | undefined, T>;
type DefaultedJson<T extends object> = ColumnType<T, string | undefined, string>;

export type TenantKind = 'platform' | 'reseller' | 'customer';
export type Role = 'platform_admin' | 'ops' | 'tenant_admin' | 'tenant_user';
export type HostConnection = 'new' | 'ready' | 'unreachable';
export type DrainMode = 'stop' | 'migrate';
export type DrainStateName = 'in_progress' | 'completed' | 'failed' | 'cancelled';
/** How the scheduler chooses among feasible hosts. */
export type SpreadName = 'binpack' | 'spread' | 'spread_tenant';
export type DeviceStateName =
  | 'pending'
  | 'scheduled'
  | 'creating'
  | 'booting'
  | 'running'
  | 'stopping'
  | 'stopped'
  | 'deleting'
  | 'deleted'
  | 'error'
  | 'lost';

export interface TenantTable {
  id: string;
  parent_id: string | null;
  kind: TenantKind;
  display_name: string;
  /** 'suspended': its keys and its descendants' are refused, its devices stopped. */
  state: ColumnType<'active' | 'suspended', 'active' | 'suspended' | undefined, 'active' | 'suspended'>;
  labels: ColumnType<StringMap, string | undefined, string>;
  create_time: CreatedAt;
  update_time: Timestamp;
  delete_time: Timestamp | null;
}

export interface QuotaTable {
  tenant_id: string;
  max_devices: number | null;
  max_running_devices: number | null;
  max_vcpu_millicores: number | null;
  max_memory_mib: number | null;
  max_device_minutes: number | null;
  period: ColumnType<'day' | 'month', 'day' | 'month' | undefined, 'day' | 'month'>;
  /** What happens when max_device_minutes is used up. */
  device_minutes_action: ColumnType<
    DeviceMinutesAction,
    DeviceMinutesAction | undefined,
    DeviceMinutesAction
  >;
  update_time: Timestamp;
}

export type DeviceMinutesAction = 'refuse_starts' | 'stop_running';

/** The minutes enforcer's last reading of a limited tenant's subtree in one period. */
export interface QuotaMinutesTable {
  tenant_id: string;
  period_start: Timestamp;
  used_minutes: number;
  /** The limit it was read against. */
  limit_minutes: number;
  /** The highest threshold (0, 80, 100) announced this period: each goes out once. */
  announced_percent: ColumnType<number, number | undefined, number>;
  update_time: Timestamp;
}

export interface ApiKeyTable {
  id: string;
  tenant_id: string;
  role: Role;
  display_name: string;
  /** sha256 of the secret part; the secret itself is never stored. */
  secret_hash: string;
  create_time: CreatedAt;
  expire_time: Timestamp | null;
  revoke_time: Timestamp | null;
  last_used_time: Timestamp | null;
}

export interface HostTable {
  id: string;
  name: string;
  arch: string;
  labels: Json<StringMap>;
  connection: HostConnection;
  cordoned: boolean;
  /** Mode of the drain in progress; null when none is (the scheduler reads this). */
  drain_mode: DrainMode | null;
  /** The current or last drain: start, mode, state, reason, device count, deadline and end. */
  drain_start_time: Timestamp | null;
  drain_last_mode: ColumnType<DrainMode | null, DrainMode | null | undefined, DrainMode | null>;
  drain_state: ColumnType<DrainStateName | null, DrainStateName | null | undefined, DrainStateName | null>;
  drain_reason: ColumnType<string, string | undefined, string>;
  /** Devices on the host when the drain started. */
  drain_devices_total: ColumnType<number, number | undefined, number>;
  drain_deadline: ColumnType<Date | null, Date | string | null | undefined, Date | string | null>;
  drain_end_time: ColumnType<Date | null, Date | string | null | undefined, Date | string | null>;
  /** Physical capacity as the agent reported it (or as enrolled). */
  capacity_vcpu_millicores: number;
  capacity_memory_mib: number;
  capacity_storage_gib: number;
  capacity_devices: number;
  overcommit_cpu: number;
  overcommit_memory: number;
  /** Sums over the host's devices, maintained by the plan applier inside its transaction. */
  allocated_vcpu_millicores: number;
  allocated_memory_mib: number;
  allocated_storage_gib: number;
  allocated_devices: number;
  agent_version: string;
  /** Public URL of the agent's stream endpoint (its sfu's signaling WebSocket); '' when none. */
  stream_endpoint: ColumnType<string, string | undefined, string>;
  /** The agent protocol version of its last Hello; 0 before any. */
  protocol_version: ColumnType<number, number | undefined, number>;
  runtime_kind: string;
  hostname: string;
  /** Labels from the agent's own config, as of its last Hello (`labels` are the enrolled ones). */
  agent_labels: ColumnType<StringMap, string | undefined, string>;
  kernel_version: ColumnType<string, string | undefined, string>;
  /** Random per agent process start: a change tells a restart from a reconnect. */
  agent_instance_id: ColumnType<string, string | undefined, string>;
  /** The control-plane replica holding the host's live stream (commands are routed there). */
  gateway_replica: ColumnType<string | null, string | null | undefined, string | null>;
  load: Json<Record<string, number>>;
  last_heartbeat_time: Timestamp | null;
  unreachable_since: Timestamp | null;
  /** Revision of the host's desired device set; bumped by every change to it. */
  desired_revision: number;
  /**
   * Set by the database on every change to a column the scheduler reads (migration
   * 2026-12-02T0100-host-change-feed): grows with each change of the row, so a newer read of it wins.
   */
  change_seq: ColumnType<number, never, never>;
  create_time: CreatedAt;
  update_time: Timestamp;
}

export interface HostCredentialTable {
  id: string;
  host_id: string;
  secret_hash: string;
  create_time: CreatedAt;
  revoke_time: Timestamp | null;
}

export interface ImageTable {
  id: string;
  /** null: a platform image every tenant may use. */
  tenant_id: string | null;
  display_name: string;
  image_ref: string;
  android_version: string;
  arches: Json<string[]>;
  required_labels: Json<StringMap>;
  default_spec: Json<Record<string, unknown>>;
  min_vcpu_millicores: number;
  min_memory_mib: number;
  min_storage_gib: number;
  sdk_level: ColumnType<number, number | undefined, number>;
  labels: ColumnType<StringMap, string | undefined, string>;
  /** 'deprecated': existing devices keep the image, new ones may not use it. */
  state: ColumnType<'active' | 'deprecated', 'active' | 'deprecated' | undefined, 'active' | 'deprecated'>;
  create_time: CreatedAt;
  update_time: Timestamp;
  delete_time: Timestamp | null;
}

export interface DeviceTable {
  id: string;
  tenant_id: string;
  display_name: string;
  labels: Json<StringMap>;
  image_id: string;
  /** The spec, one column per field (migrations/2026-12-01T0100-typed-specs-quota-rows.ts). */
  /** Container image reference: the image's at create, unless an operator overrode it. Internal. */
  image_ref: string;
  vcpu_millicores: number;
  memory_mib: number;
  storage_gib: number;
  screen_width_px: Defaulted<number>;
  screen_height_px: Defaulted<number>;
  screen_dpi: Defaulted<number>;
  screen_fps: Defaulted<number>;
  gpu_mode: Defaulted<GpuModeName>;
  /** Extra Android system properties (ro.*). */
  properties: DefaultedJson<StringMap>;
  spec_revision: number;
  /** The placement as given at create: host labels to match, strategy, arch ('' = any), pin. */
  node_selector: DefaultedJson<StringMap>;
  spread: Defaulted<SpreadName>;
  arch: Defaulted<string>;
  pin_host_id: Defaulted<string | null>;
  desired_power: PowerName;
  restart_policy: RestartPolicyName;
  restart_generation: number;
  state: DeviceStateName;
  state_reason: string;
  state_message: string;
  host_id: string | null;
  observed_spec_revision: number;
  adb_endpoint: string;
  create_time: CreatedAt;
  update_time: Timestamp;
  delete_time: Timestamp | null;
  /** When `state` last changed (set by the state machine). */
  state_change_time: ColumnType<Date, Date | string | undefined, Date | string>;
  /** When the device last entered RUNNING. */
  start_time: ColumnType<Date | null, Date | string | null | undefined, Date | string | null>;
}

export interface DeviceEventTable {
  id: Generated<number>;
  device_id: string;
  tenant_id: string;
  from_state: DeviceStateName | null;
  to_state: DeviceStateName;
  reason: string;
  message: string;
  /** The host the device was on at the time. */
  host_id: ColumnType<string | null, string | null | undefined, string | null>;
  create_time: CreatedAt;
}

/** One device of a MIGRATE drain (migrations/2026-11-24T0100-drain-devices.ts). */
export interface DrainDeviceTable {
  /** The draining host. */
  host_id: string;
  device_id: string;
  tenant_id: string;
  /** The device's desired power when the drain began (kept for history; the drain no longer changes it). */
  desired_power: PowerName;
  /** Where the device was re-placed; null while it waits on the draining host. */
  target_host_id: string | null;
  /** Why the last attempt could not place it; empty when none failed. */
  failure: ColumnType<string, string | undefined, string>;
  migrate_time: Timestamp | null;
  update_time: Timestamp;
}

export interface IdempotencyKeyTable {
  tenant_id: string;
  method: string;
  key: string;
  /** sha256 of the request, so a key reused for another request is refused. */
  request_hash: string;
  response: Json<object | null>;
  create_time: CreatedAt;
}

/**
 * One audited call or event (append-only: a trigger refuses UPDATE and DELETE). Columns added in
 * migrations/2026-12-04T0400-audit-trail-rate-limits.ts default to '' for writers that leave them.
 */
export interface AuditLogTable {
  id: Generated<number>;
  /** The target's tenant: the resource's owner, else the tenant named, else the actor's. */
  tenant_id: string;
  /** The actor's tenant ('' for an anonymous caller). */
  actor_tenant_id: ColumnType<string, string | undefined, string>;
  /** The key id or user id; for an anonymous caller the key id it presented, if any. */
  actor: string;
  /** 'api_key' | 'user' | 'host' | 'system' | 'anonymous' | '' (unknown). */
  actor_kind: ColumnType<string, string | undefined, string>;
  role: string;
  /** `<Service>/<Method>` for API calls, `<Thing>/<Event>` for events the control plane records. */
  method: string;
  /** The ids the request named, `field=value` pairs (bounded, escaped). */
  resource: string;
  resource_type: ColumnType<string, string | undefined, string>;
  resource_id: ColumnType<string, string | undefined, string>;
  /** Connect code in snake_case, 'ok' on success. */
  outcome: string;
  remote_address: ColumnType<string, string | undefined, string>;
  /** The x-request-id of the call. */
  request_id: ColumnType<string, string | undefined, string>;
  /** The request's own request_id field (idempotency key). */
  idempotency_key: ColumnType<string, string | undefined, string>;
  /** The error message the caller was sent ('' on success). */
  message: ColumnType<string, string | undefined, string>;
  detail: Json<Record<string, unknown>>;
  create_time: CreatedAt;
}

/** Per-tenant rate limit overrides; a null column keeps the configured default. */
export interface TenantRateLimitTable {
  tenant_id: string;
  tenant_rps: number | null;
  tenant_burst: number | null;
  key_rps: number | null;
  key_burst: number | null;
  update_time: Timestamp;
}

/** A token bucket the replicas lease tokens from (api/rate-limit-store.ts). */
export interface RateLimitBucketTable {
  key: string;
  tokens: number;
  last_grant: Generated<number>;
  refill_time: Timestamp;
}

/**
 * One raw sample, partitioned by month of start_time (migrations/2026-12-04T0100-usage-partitions-rollups.ts);
 * old months are dropped by retention (usage/partitions.ts), the rollups stay.
 */
export interface UsageSampleTable {
  host_id: string;
  sequence: number;
  device_id: string;
  tenant_id: string;
  start_time: Timestamp;
  end_time: Timestamp;
  vcpu_millicores: number;
  memory_mib: number;
  storage_gib: number;
  state: string;
  /** Bytes the device sent to the internet in the interval, as its agent metered them (migrations/2026-12-06T0100-usage-egress.ts). */
  egress_bytes: ColumnType<string, number | string | undefined, number | string>;
  create_time: CreatedAt;
}

/** A sample the agent sent for a device that was not on its host: acknowledged, never counted. */
export interface UsageRejectedTable {
  host_id: string;
  sequence: number;
  device_id: string;
  /** The tenant the agent claimed (the control plane's own rows decide). */
  claimed_tenant_id: string;
  reason: string;
  create_time: CreatedAt;
}

/** Sequences stored or rejected above the host's cursor: exactly-once for the gaps (usage/intake.ts). */
export interface UsageSeenTable {
  host_id: string;
  sequence: number;
}

/** A rollup grain in minutes: 15, 60 or 1440 (a UTC day). */
export type UsageGrain = 15 | 60 | 1440;

/** Integer counters of a rollup row (usage/rollups.ts); sums may pass 2^53, so read them as text. */
export interface UsageCounters {
  /** Device-seconds running (BOOTING or RUNNING). */
  running_s: ColumnType<string, number | string, number | string>;
  /** Device-seconds not running (the device existed). */
  stopped_s: ColumnType<string, number | string, number | string>;
  /** vCPU millicore-seconds, over running seconds. */
  vcpu_mcs: ColumnType<string, number | string, number | string>;
  /** Memory MiB-seconds, over running seconds. */
  memory_mibs: ColumnType<string, number | string, number | string>;
  /** Storage GiB-seconds, over every second the device existed. */
  storage_gibs: ColumnType<string, number | string, number | string>;
  /** Bytes sent to the internet, summed from the samples starting in the bucket. */
  egress_bytes: ColumnType<string, number | string | undefined, number | string>;
}

export interface UsageRollupDeviceTable extends UsageCounters {
  tenant_id: string;
  grain: UsageGrain;
  /** Start of the bucket, aligned to the grain in UTC. */
  bucket_start: Timestamp;
  device_id: string;
  /** The host that reported the samples (a device that moved has a row per host). */
  host_id: string;
}

export interface UsageRollupTenantTable extends UsageCounters {
  tenant_id: string;
  grain: UsageGrain;
  bucket_start: Timestamp;
}

/** Which 15-minute slots of a UTC month a device has usage in (migrations/2026-12-05T0100-usage-device-months.ts). */
export interface UsageDeviceMonthTable {
  tenant_id: string;
  month: Timestamp;
  device_id: string;
  /** bit(2976) as '0'/'1' text: bit i is the month's i-th 15-minute slot. */
  slots: string;
}

export interface UsageCursorTable {
  host_id: string;
  /** Highest sequence such that every sample up to it is stored. */
  acked_sequence: number;
}

export interface ArtifactTable {
  tenant_id: string;
  sha256: string;
  kind: 'apk' | 'file';
  size_bytes: number;
  filename: string;
  package_name: string;
  version_code: number;
  version_name: string;
  min_sdk: ColumnType<number, number | undefined, number>;
  target_sdk: ColumnType<number, number | undefined, number>;
  create_time: CreatedAt;
}

export interface UploadTable {
  id: string;
  tenant_id: string;
  kind: 'apk' | 'file';
  filename: string;
  expected_size: number;
  expected_sha256: string;
  committed_bytes: number;
  state: 'open' | 'finalized' | 'failed';
  create_time: CreatedAt;
  expire_time: Timestamp;
}

export type StreamSessionState = 'issued' | 'active' | 'ended';

/** A grant to watch a device through its host's sfu (migrations/2026-12-01T0200-stream-sessions.ts). */
export interface StreamSessionTable {
  id: string;
  tenant_id: string;
  device_id: string;
  host_id: string;
  rights: 'view' | 'control';
  /** The API key that created it. */
  actor: string;
  state: ColumnType<StreamSessionState, StreamSessionState | undefined, StreamSessionState>;
  create_time: CreatedAt;
  expire_time: Timestamp;
  start_time: ColumnType<Date | null, Date | string | null | undefined, Date | string | null>;
  end_time: ColumnType<Date | null, Date | string | null | undefined, Date | string | null>;
  end_reason: ColumnType<string, string | undefined, string>;
  viewer_seconds: ColumnType<number, number | undefined, number>;
  /** StreamSessionStats as protobuf JSON with numbers. */
  stats: ColumnType<Record<string, number>, string | undefined, string>;
  update_time: ColumnType<Date, Date | string | undefined, Date | string>;
}

/** A grant to carry ADB to a device through its host agent (migrations/2026-12-03T0100-adb-tunnels.ts). */
export interface AdbTunnelTable {
  id: string;
  tenant_id: string;
  device_id: string;
  host_id: string;
  /** The API key or user it was issued to. */
  actor: string;
  create_time: CreatedAt;
  expire_time: Timestamp;
}

export interface Database {
  tenant: TenantTable;
  quota: QuotaTable;
  quota_minutes: QuotaMinutesTable;
  api_key: ApiKeyTable;
  host: HostTable;
  host_credential: HostCredentialTable;
  image: ImageTable;
  device: DeviceTable;
  device_event: DeviceEventTable;
  drain_device: DrainDeviceTable;
  idempotency_key: IdempotencyKeyTable;
  audit_log: AuditLogTable;
  tenant_rate_limit: TenantRateLimitTable;
  rate_limit_bucket: RateLimitBucketTable;
  usage_sample: UsageSampleTable;
  usage_cursor: UsageCursorTable;
  usage_rejected: UsageRejectedTable;
  usage_seen: UsageSeenTable;
  usage_rollup_device: UsageRollupDeviceTable;
  usage_rollup_tenant: UsageRollupTenantTable;
  usage_device_month: UsageDeviceMonthTable;
  stream_session: StreamSessionTable;
  adb_tunnel: AdbTunnelTable;
  artifact: ArtifactTable;
  upload: UploadTable;
  gateway_relay: GatewayRelayTable;
  web_user: WebUserTable;
  web_session: WebSessionTable;
  invitation: InvitationTable;
  sign_in_failure: SignInFailureTable;
  price_book: PriceBookTable;
  statement: StatementTable;
  webhook: WebhookTable;
  webhook_event: WebhookEventTable;
  webhook_delivery: WebhookDeliveryTable;
  webhook_attempt: WebhookAttemptTable;
}

/** A webhook subscription (migrations/2026-12-04T0300-webhooks-outbox.ts). */
export interface WebhookTable {
  id: string;
  tenant_id: string;
  display_name: string;
  url: string;
  /** Event type names (webhooks/event-types.ts), e.g. ["device_created"]. */
  event_types: Json<string[]>;
  state: Defaulted<'enabled' | 'disabled'>;
  disabled_reason: Defaulted<string>;
  /** The signing secret, encrypted (webhooks/secrets.ts). */
  secret: string;
  /** The secret before the last rotation, encrypted; signs too until its expire time. */
  previous_secret: ColumnType<string | null, string | null | undefined, string | null>;
  previous_secret_expire_time: ColumnType<
    Date | null,
    Date | string | null | undefined,
    Date | string | null
  >;
  /** Since when every attempt has failed; null after a success. */
  failing_since: ColumnType<Date | null, Date | string | null | undefined, Date | string | null>;
  create_time: CreatedAt;
  update_time: Timestamp;
  delete_time: ColumnType<Date | null, Date | string | null | undefined, Date | string | null>;
}

/** The outbox: one event, written in the transaction of the change it reports. */
export interface WebhookEventTable {
  id: string;
  tenant_id: string;
  type: string;
  /** The delivered body (protobuf JSON of WebhookEvent), the same bytes in every attempt. */
  body: string;
  create_time: Timestamp;
}

export type WebhookDeliveryStateName = 'pending' | 'succeeded' | 'failed' | 'dropped';

/** One event to one webhook, tried until it succeeds or its deadline passes. */
export interface WebhookDeliveryTable {
  id: string;
  webhook_id: string;
  /** The webhook's tenant. */
  tenant_id: string;
  event_id: string;
  event_type: string;
  state: Defaulted<WebhookDeliveryStateName>;
  /** Made by RedeliverWebhookEvent or SendTestWebhookEvent. */
  manual: Defaulted<boolean>;
  /** Attempts claimed so far. */
  attempts: Defaulted<number>;
  next_attempt_time: Timestamp;
  /** The claim of the attempt in flight: only its holder records the outcome. */
  lease_token: ColumnType<string | null, string | null | undefined, string | null>;
  create_time: Timestamp;
  update_time: Timestamp;
}

export type WebhookOutcomeName = 'succeeded' | 'http_error' | 'network_error' | 'refused';

/** The delivery log: one row per attempt. */
export interface WebhookAttemptTable {
  id: string;
  delivery_id: string;
  webhook_id: string;
  tenant_id: string;
  event_id: string;
  event_type: string;
  attempt: number;
  attempt_time: Timestamp;
  outcome: WebhookOutcomeName;
  http_status: number;
  error: string;
  response_excerpt: string;
  duration_ms: number;
}

/** A message between replicas too large for a NOTIFY payload; read and deleted by its receiver. */
export interface GatewayRelayTable {
  id: string;
  payload: string;
  create_time: CreatedAt;
}

/** A person who signs in to the web console (migrations/2026-12-02T0200-web-users.ts). */
export interface WebUserTable {
  id: string;
  tenant_id: string;
  /** Trimmed and lower-cased; unique across the platform. */
  email: string;
  display_name: string;
  role: Role;
  /** argon2id, PHC string. */
  password_hash: string;
  create_time: CreatedAt;
  last_sign_in_time: Timestamp | null;
}

/** A signed-in browser; the cookie's value is never stored, only its sha256. */
export interface WebSessionTable {
  id: string;
  user_id: string;
  tenant_id: string;
  token_hash: string;
  csrf_token: string;
  create_time: Timestamp;
  last_seen_time: Timestamp;
  /** The absolute end; the idle timeout ends it sooner (users/sessions.ts). */
  expire_time: Timestamp;
  revoke_time: Timestamp | null;
  user_agent: string;
  client_address: string;
}

export interface InvitationTable {
  id: string;
  tenant_id: string;
  email: string;
  role: Role;
  display_name: string;
  /** sha256 of the token; the token itself is shown once. */
  token_hash: string;
  /** The principal that created it (a user id or an API key id). */
  creator: string;
  create_time: Timestamp;
  expire_time: Timestamp;
  accept_time: Timestamp | null;
  revoke_time: Timestamp | null;
  user_id: Defaulted<string>;
}

/** One failed sign-in, counted against the account (email) and the client address. */
export interface SignInFailureTable {
  scope: 'email' | 'address';
  subject: string;
  create_time: Timestamp;
}

/**
 * A tenant's prices from effective_from on (migrations/2026-12-04T0200-billing-price-books-statements.ts).
 * Never updated nor deleted (a trigger refuses it).
 */
export interface PriceBookTable {
  id: string;
  tenant_id: string;
  /** ISO 4217. */
  currency: string;
  effective_from: Timestamp;
  /** billing/rating.ts BookPrice[], with bigints as decimal strings. */
  prices: Json<StoredPrice[]>;
  /** Decimal string, at most the currency's minor digits. */
  minimum_charge: string;
  display_name: Defaulted<string>;
  creator: string;
  create_time: CreatedAt;
}

export interface StoredPrice {
  dimension: string;
  device_class: string;
  included_quantity: string;
  tiers: { up_to: string; unit_price: string }[];
}

/** A tenant's closed month; never updated nor deleted (a trigger refuses it). */
export interface StatementTable {
  id: string;
  tenant_id: string;
  /** "YYYY-MM", UTC. */
  month: string;
  currency: string;
  /** Decimal strings with the currency's minor digits. */
  total: string;
  lines: Json<StoredLine[]>;
  customers: Json<StoredCustomer[]>;
  customers_total: string;
  margin: string;
  close_time: Timestamp;
}

export interface StoredLine {
  kind: string;
  description: string;
  dimension: string;
  device_class: string;
  price_book_id: string;
  start_time: string;
  end_time: string;
  tier: number;
  quantity: string;
  unit_price: string;
  amount: string;
}

export interface StoredCustomer {
  tenant_id: string;
  priced: boolean;
  total: string;
  statement_id: string;
}
