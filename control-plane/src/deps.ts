import type { Kysely } from 'kysely';
import type { AuditWriter } from './api/audit-writer.js';
import type { RateLimiter } from './api/rate-limit.js';
import type { AuthCache } from './auth/auth-cache.js';
import type { Clock } from './clock.js';
import type { ControlPlaneConfig } from './config.js';
import type { AgentGateway } from './gateway/types.js';
import type { Logger } from './logger.js';
import type { Metrics } from './metrics.js';
import type { Planner } from './placement/planner.js';
import type { Database } from './store/schema.js';
import type { IceConfig } from './streams/ice.js';
import type { StreamKeys } from './streams/keys.js';
import type { WebhookRuntime } from './webhooks/webhook-service.js';

/** What the services share. Built once in server.ts; tests build their own. */
export interface Deps {
  readonly config: ControlPlaneConfig;
  readonly db: Kysely<Database>;
  readonly logger: Logger;
  readonly metrics: Metrics;
  readonly clock: Clock;
  /** The API's audit rows, written beside the calls; flush() before reading audit_log. */
  readonly audit: AuditWriter;
  /** The agent gateway: push desired-state changes, send commands and drains to hosts. */
  readonly gateway: AgentGateway;
  /** The replica's one placement entry point: plans are group-committed through it. */
  readonly planner: Planner;
  /** The leader's drainer (absent where no drains run, as in some tests): nudge() asks for a pass. */
  readonly drainer?: { nudge(): unknown } | undefined;
  /** The leader's device-minutes enforcer (absent in some tests): nudge() asks for a pass now. */
  readonly minutes?: { nudge(): Promise<unknown> } | undefined;
  /** Authentication answers kept between calls; services that change them invalidate it. */
  readonly authCache?: AuthCache | undefined;
  /** Token buckets per API key and tenant; SetQuota tells it of changed overrides. */
  readonly rateLimiter?: RateLimiter | undefined;
  /** Stream sessions: the keys tokens are signed with and the ICE servers viewers get. */
  readonly streams?: { readonly keys: StreamKeys; readonly ice: IceConfig } | undefined;
  /** Webhook secrets, the target policy and this replica's delivery worker. */
  readonly webhooks?: WebhookRuntime | undefined;
}
