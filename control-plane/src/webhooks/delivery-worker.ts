// The delivery worker: every replica runs one. It claims due deliveries with FOR UPDATE SKIP
// LOCKED, so replicas share the work without a leader and never take the same delivery at once;
// a claim moves the delivery's due time past the attempt's lease, so a replica that dies
// mid-attempt leaves it to come due again (at least once, with the same event id). The attempt's
// HTTP request runs outside any transaction; its outcome is written only by the claim's holder.
// Failures are retried with exponential backoff and jitter until the retry window closes; a
// webhook whose every attempt has failed for the disable window is disabled, with an event.
import { randomBytes } from 'node:crypto';
import { WebhookEventType } from '@cphone/proto';
import type { Kysely, Selectable, Transaction } from 'kysely';
import type { AuditWriter } from '../api/audit-writer.js';
import type { Clock } from '../clock.js';
import type { ControlPlaneConfig } from '../config.js';
import { DomainError } from '../errors.js';
import { newId } from '../ids.js';
import type { Logger } from '../logger.js';
import type { Metrics } from '../metrics.js';
import type { Database, WebhookDeliveryTable, WebhookOutcomeName } from '../store/schema.js';
import { enqueueWebhookEvent } from './outbox.js';
import type { SecretBox } from './secrets.js';
import { signatureHeader } from './secrets.js';
import { type SendResult, send } from './sender.js';
import type { TargetPolicy } from './target-policy.js';
import { type WebhookRow, webhookToProto } from './webhook-view.js';

type DeliveryRow = Selectable<WebhookDeliveryTable>;

export type WebhookWorkerConfig = Pick<
  ControlPlaneConfig,
  | 'webhookTimeoutMs'
  | 'webhookRetryWindowMs'
  | 'webhookBackoffMs'
  | 'webhookBackoffMaxMs'
  | 'webhookDisableAfterMs'
  | 'webhookPollMs'
  | 'webhookConcurrency'
  | 'webhookRetentionMs'
>;

export interface WebhookWorkerOptions {
  readonly db: Kysely<Database>;
  readonly logger: Logger;
  readonly metrics: Metrics;
  readonly clock: Clock;
  readonly audit: AuditWriter;
  readonly config: WebhookWorkerConfig;
  readonly secrets: SecretBox;
  readonly policy: TargetPolicy;
}

/** The delay before retry number `attempt` (1 after the first failure): doubling, capped, jittered. */
export function backoffMs(attempt: number, baseMs: number, maxMs: number, random = Math.random): number {
  const full = Math.min(maxMs, baseMs * 2 ** Math.min(attempt - 1, 40));
  return Math.round(full / 2 + (random() * full) / 2);
}

export class WebhookWorker {
  readonly #o: WebhookWorkerOptions;
  readonly #log: Logger;
  readonly #inFlight = new Set<Promise<void>>();
  readonly #abort = new AbortController();
  #timer: NodeJS.Timeout | undefined;
  #passing: Promise<void> | undefined;
  #again = false;
  #closed = false;
  #lastSweep = 0;

  constructor(options: WebhookWorkerOptions) {
    this.#o = options;
    this.#log = options.logger.child({ module: 'webhooks' });
  }

  start(): void {
    this.#schedule(0);
  }

  /** Asks for a pass soon (new deliveries were committed on this replica). */
  nudge(): void {
    this.#schedule(0);
  }

  #schedule(ms: number): void {
    if (this.#closed) return;
    clearTimeout(this.#timer);
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.#run();
    }, ms);
    this.#timer.unref();
  }

  #run(): void {
    if (this.#passing) {
      this.#again = true;
      return;
    }
    this.#passing = this.pass()
      .catch((err: unknown) => this.#log.warn({ err }, 'webhook pass failed'))
      .finally(() => {
        this.#passing = undefined;
        if (this.#again) {
          this.#again = false;
          this.#schedule(0);
        } else this.#schedule(this.#o.config.webhookPollMs);
      });
  }

  /** Claims what is due (up to the free slots) and starts those attempts; resolves once claimed. */
  async pass(): Promise<void> {
    const now = this.#o.clock.now();
    await this.#sweep(now);
    const free = this.#o.config.webhookConcurrency - this.#inFlight.size;
    if (free <= 0 || this.#closed) return;
    const token = randomBytes(8).toString('hex');
    // The lease: the attempt's timeout and a margin to record its outcome.
    const leaseUntil = new Date(now.getTime() + this.#o.config.webhookTimeoutMs + 30_000);
    const claimed = await this.#o.db
      .updateTable('webhook_delivery')
      .set((eb) => ({
        next_attempt_time: leaseUntil,
        lease_token: token,
        attempts: eb('attempts', '+', 1),
        update_time: now,
      }))
      .where('id', 'in', (eb) =>
        eb
          .selectFrom('webhook_delivery')
          .select('id')
          .where('state', '=', 'pending')
          .where('next_attempt_time', '<=', now)
          .orderBy('next_attempt_time')
          .limit(free)
          .forUpdate()
          .skipLocked(),
      )
      .returningAll()
      .execute();
    for (const delivery of claimed) {
      const attempt = this.#attempt(delivery).catch((err: unknown) =>
        this.#log.error({ err, deliveryId: delivery.id }, 'webhook attempt failed to record'),
      );
      this.#inFlight.add(attempt);
      void attempt.finally(() => {
        this.#inFlight.delete(attempt);
        this.#schedule(0);
      });
    }
  }

  async #attempt(delivery: DeliveryRow): Promise<void> {
    const { db, clock, config } = this.#o;
    const [webhook, event] = await Promise.all([
      db.selectFrom('webhook').selectAll().where('id', '=', delivery.webhook_id).executeTakeFirst(),
      db.selectFrom('webhook_event').selectAll().where('id', '=', delivery.event_id).executeTakeFirst(),
    ]);
    if (
      !webhook ||
      !event ||
      webhook.delete_time !== null ||
      (webhook.state === 'disabled' && !delivery.manual)
    ) {
      await this.#finish(delivery, { state: 'dropped' });
      this.#o.metrics.webhookDeliveries.inc({ outcome: 'dropped' });
      return;
    }
    const attemptTime = clock.now();
    const timestamp = Math.floor(attemptTime.getTime() / 1000);
    let result: SendResult;
    let outcome: WebhookOutcomeName;
    try {
      const target = await this.#o.policy.check(webhook.url);
      const secrets = [this.#o.secrets.open(webhook.secret, webhook.id)];
      if (webhook.previous_secret && (webhook.previous_secret_expire_time ?? attemptTime) > attemptTime)
        secrets.push(this.#o.secrets.open(webhook.previous_secret, webhook.id));
      result = await send({
        target,
        body: event.body,
        timeoutMs: config.webhookTimeoutMs,
        signal: this.#abort.signal,
        headers: {
          'webhook-id': event.id,
          'webhook-timestamp': String(timestamp),
          'webhook-signature': signatureHeader(secrets, event.id, timestamp, event.body),
        },
      });
      outcome =
        result.status >= 200 && result.status < 300
          ? 'succeeded'
          : result.status > 0
            ? 'http_error'
            : 'network_error';
    } catch (error) {
      if (!(error instanceof DomainError)) throw error;
      result = { status: 0, error: error.message, excerpt: '', durationMs: 0 };
      outcome = 'refused';
    }
    this.#o.metrics.webhookDeliveries.inc({ outcome });
    this.#o.metrics.webhookDeliverySeconds.observe({ outcome }, result.durationMs / 1000);
    const aborted = this.#abort.signal.aborted && outcome !== 'succeeded';
    const now = clock.now();
    let disabled: WebhookRow | undefined;
    await db.transaction().execute(async (trx) => {
      await trx
        .insertInto('webhook_attempt')
        .values({
          id: newId('wha', attemptTime.getTime()),
          delivery_id: delivery.id,
          webhook_id: webhook.id,
          tenant_id: delivery.tenant_id,
          event_id: event.id,
          event_type: delivery.event_type,
          attempt: delivery.attempts,
          attempt_time: attemptTime,
          outcome,
          http_status: result.status,
          error: result.error.slice(0, 1000),
          response_excerpt: result.excerpt,
          duration_ms: result.durationMs,
        })
        .execute();
      if (outcome === 'succeeded') {
        await this.#finish(delivery, { state: 'succeeded' }, trx);
        await trx
          .updateTable('webhook')
          .set({ failing_since: null })
          .where('id', '=', webhook.id)
          .where('failing_since', 'is not', null)
          .execute();
        return;
      }
      if (aborted) {
        // Stopping mid-attempt is not the receiver's failure: due again at once, on any replica.
        await this.#finish(delivery, { state: 'pending', next: now }, trx);
        return;
      }
      const next = new Date(
        now.getTime() + backoffMs(delivery.attempts, config.webhookBackoffMs, config.webhookBackoffMaxMs),
      );
      const deadline = delivery.create_time.getTime() + config.webhookRetryWindowMs;
      const gaveUp = next.getTime() > deadline;
      await this.#finish(delivery, gaveUp ? { state: 'failed' } : { state: 'pending', next }, trx);
      if (gaveUp) this.#o.metrics.webhookDeliveries.inc({ outcome: 'failed' });
      disabled = await this.#failing(trx, webhook.id, attemptTime, now);
    });
    if (disabled) {
      this.#log.warn({ webhookId: disabled.id, reason: disabled.disabled_reason }, 'webhook disabled');
      await this.#o.audit.record({
        tenant_id: disabled.tenant_id,
        actor: 'control-plane',
        role: '',
        method: 'Webhook/Disabled',
        resource: `webhook_id=${disabled.id}`,
        outcome: 'ok',
        detail: JSON.stringify({ reason: disabled.disabled_reason, url: disabled.url }),
        create_time: now,
      });
      this.nudge();
    }
  }

  /** Ends or reschedules a delivery, if this replica's claim still holds it. */
  async #finish(
    delivery: DeliveryRow,
    to: { state: 'succeeded' | 'failed' | 'dropped' } | { state: 'pending'; next: Date },
    trx: Kysely<Database> | Transaction<Database> = this.#o.db,
  ): Promise<void> {
    await trx
      .updateTable('webhook_delivery')
      .set({
        state: to.state,
        lease_token: null,
        update_time: this.#o.clock.now(),
        ...(to.state === 'pending' ? { next_attempt_time: to.next } : {}),
      })
      .where('id', '=', delivery.id)
      .where('lease_token', '=', delivery.lease_token)
      .execute();
  }

  /** Records a failure on the webhook; disables it when every attempt failed for the window. */
  async #failing(
    trx: Transaction<Database>,
    webhookId: string,
    attemptTime: Date,
    now: Date,
  ): Promise<WebhookRow | undefined> {
    const row = await trx
      .selectFrom('webhook')
      .selectAll()
      .where('id', '=', webhookId)
      .forUpdate()
      .executeTakeFirstOrThrow();
    const since = row.failing_since ?? attemptTime;
    if (!row.failing_since)
      await trx.updateTable('webhook').set({ failing_since: since }).where('id', '=', webhookId).execute();
    const window = this.#o.config.webhookDisableAfterMs;
    if (row.state !== 'enabled' || row.delete_time !== null || now.getTime() - since.getTime() < window)
      return undefined;
    const reason = `every delivery attempt failed since ${since.toISOString()} (${Math.round(window / 1000)} s or more)`;
    const disabled = await trx
      .updateTable('webhook')
      .set({ state: 'disabled', disabled_reason: reason, update_time: now })
      .where('id', '=', webhookId)
      .returningAll()
      .executeTakeFirstOrThrow();
    // Everything pending stops, manual deliveries too; new manual ones still go (to test the URL).
    await dropPending(trx, webhookId, now, { manualToo: true });
    await enqueueWebhookEvent(
      trx,
      {
        tenantId: disabled.tenant_id,
        type: WebhookEventType.WEBHOOK_DISABLED,
        webhook: webhookToProto(disabled, now),
      },
      { now },
    );
    return disabled;
  }

  /** Deletes events and logs past the retention, at most once an hour (any replica; idempotent). */
  async #sweep(now: Date): Promise<void> {
    const every = Math.min(3_600_000, this.#o.config.webhookRetentionMs);
    if (now.getTime() - this.#lastSweep < every) return;
    this.#lastSweep = now.getTime();
    const cutoff = new Date(now.getTime() - this.#o.config.webhookRetentionMs);
    await this.#o.db.deleteFrom('webhook_attempt').where('attempt_time', '<', cutoff).execute();
    await this.#o.db
      .deleteFrom('webhook_delivery')
      .where('state', '!=', 'pending')
      .where('update_time', '<', cutoff)
      .execute();
    await this.#o.db
      .deleteFrom('webhook_event')
      .where('create_time', '<', cutoff)
      .where(({ not, exists, selectFrom }) =>
        not(
          exists(
            selectFrom('webhook_delivery')
              .select('id')
              .whereRef('webhook_delivery.event_id', '=', 'webhook_event.id')
              .where('webhook_delivery.state', '=', 'pending'),
          ),
        ),
      )
      .execute();
  }

  /** Stops claiming, aborts the attempts in flight and waits for their outcomes to be written. */
  async close(): Promise<void> {
    this.#closed = true;
    clearTimeout(this.#timer);
    await this.#passing;
    this.#abort.abort();
    await Promise.all([...this.#inFlight]);
  }
}

/** Drops a webhook's pending automatic deliveries (it was disabled or deleted). */
export async function dropPending(
  trx: Transaction<Database>,
  webhookId: string,
  now: Date,
  options: { manualToo?: boolean } = {},
): Promise<void> {
  let query = trx
    .updateTable('webhook_delivery')
    .set({ state: 'dropped', lease_token: null, update_time: now })
    .where('webhook_id', '=', webhookId)
    .where('state', '=', 'pending');
  if (!options.manualToo) query = query.where('manual', '=', false);
  await query.execute();
}
