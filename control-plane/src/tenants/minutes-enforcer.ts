// The device-minutes enforcer: runs on the leader replica only. Each pass reads, for every tenant
// with max_device_minutes, what its subtree has used in the current period (from the stored usage
// samples) and keeps that reading in quota_minutes, which quota admission (admission.ts) reads to
// refuse starts once the minutes are used up. When the use first reaches 80 % and then 100 % of the
// limit in a period it announces it (once each: the reading row remembers what it announced, and
// is updated in the same transaction as the announcement), and at 100 % it stops the subtree's
// running devices if the tenant's device_minutes_action says so.
//
// A pass of a leader that has just lost the leadership may overlap the new leader's: the reading
// row is locked while a tenant is handled, so an announcement still goes out once.
import { WebhookEventType } from '@cphone/proto';
import type { Kysely, Transaction } from 'kysely';
import { ts } from '../api/convert.js';
import { tenantSubtree } from '../auth/api-keys.js';
import type { Clock } from '../clock.js';
import { stopTenantDevices } from '../devices/lifecycle.js';
import type { Logger } from '../logger.js';
import type { Database } from '../store/schema.js';
import { enqueueWebhookEvent } from '../webhooks/outbox.js';
import { deviceMinutesOf, periodOf } from './quota.js';

/** A threshold reached in a period, announced once. */
export interface MinutesThreshold {
  readonly tenantId: string;
  readonly percent: 80 | 100;
  readonly usedMinutes: number;
  readonly limitMinutes: number;
  readonly periodStart: Date;
  readonly periodEnd: Date;
}

export interface MinutesEnforcerOptions {
  readonly db: Kysely<Database>;
  readonly clock: Clock;
  readonly logger: Logger;
  /** Whether this replica leads now (only the leader enforces). */
  readonly isLeader: () => boolean;
  /** Tells the gateway a host's desired set changed (after a commit). */
  readonly desiredChanged: (hostId: string) => void;
  /** Announces a threshold inside the transaction that records it (webhook outbox). */
  readonly announce?: (trx: Transaction<Database>, threshold: MinutesThreshold) => Promise<unknown>;
  /** Called after a transaction that announced something committed (to wake the webhook worker). */
  readonly announced?: () => void;
  /** Milliseconds between passes (default 60,000). */
  readonly intervalMs?: number;
}

export interface MinutesPass {
  /** Tenants read. */
  readonly checked: number;
  /** Thresholds announced by this pass. */
  readonly announced: MinutesThreshold[];
  /** Devices set to stopped by this pass. */
  readonly stopped: number;
}

export class MinutesEnforcer {
  #timer: NodeJS.Timeout | undefined;
  #running: Promise<MinutesPass | undefined> | undefined;
  readonly #log: Logger;

  constructor(private readonly options: MinutesEnforcerOptions) {
    this.#log = options.logger.child({ module: 'minutes-enforcer' });
  }

  start(): void {
    this.#timer = setInterval(() => void this.nudge(), this.options.intervalMs ?? 60_000);
    this.#timer.unref();
  }

  /** Runs a pass now if this replica leads; joins the one in flight. Undefined on a follower. */
  nudge(): Promise<MinutesPass | undefined> {
    this.#running ??= (async () => {
      try {
        return this.options.isLeader() ? await this.pass() : undefined;
      } catch (err) {
        this.#log.error({ err }, 'device minutes pass failed');
        return undefined;
      } finally {
        this.#running = undefined;
      }
    })();
    return this.#running;
  }

  close(): Promise<unknown> {
    clearInterval(this.#timer);
    this.#timer = undefined;
    return this.#running ?? Promise.resolve();
  }

  /** One reading of every tenant with a device-minutes limit. */
  async pass(): Promise<MinutesPass> {
    const { db, clock } = this.options;
    const limited = await db
      .selectFrom('quota')
      .innerJoin('tenant', 'tenant.id', 'quota.tenant_id')
      .select(['quota.tenant_id', 'quota.max_device_minutes', 'quota.period', 'quota.device_minutes_action'])
      .where('quota.max_device_minutes', 'is not', null)
      .where('tenant.delete_time', 'is', null)
      .orderBy('quota.tenant_id')
      .execute();
    const announced: MinutesThreshold[] = [];
    let stopped = 0;
    for (const q of limited) {
      const now = clock.now();
      const period = periodOf(q.period, now);
      const limit = q.max_device_minutes ?? 0;
      const subtree = await tenantSubtree(db, q.tenant_id);
      const used = await deviceMinutesOf(db, subtree, period);
      const percent = used >= limit ? 100 : used * 100 >= limit * 80 ? 80 : 0;
      const hosts = await db.transaction().execute(async (trx) => {
        await trx
          .insertInto('quota_minutes')
          .values({
            tenant_id: q.tenant_id,
            period_start: period.start,
            used_minutes: used,
            limit_minutes: limit,
            update_time: now,
          })
          .onConflict((c) => c.columns(['tenant_id', 'period_start']).doNothing())
          .execute();
        const reading = await trx
          .selectFrom('quota_minutes')
          .select('announced_percent')
          .where('tenant_id', '=', q.tenant_id)
          .where('period_start', '=', period.start)
          .forUpdate()
          .executeTakeFirstOrThrow();
        let top = reading.announced_percent;
        for (const threshold of [80, 100] as const) {
          if (percent < threshold || top >= threshold) continue;
          const t: MinutesThreshold = {
            tenantId: q.tenant_id,
            percent: threshold,
            usedMinutes: used,
            limitMinutes: limit,
            periodStart: period.start,
            periodEnd: period.end,
          };
          await this.options.announce?.(trx, t);
          announced.push(t);
          top = threshold;
        }
        await trx
          .updateTable('quota_minutes')
          .set({ used_minutes: used, limit_minutes: limit, announced_percent: top, update_time: now })
          .where('tenant_id', '=', q.tenant_id)
          .where('period_start', '=', period.start)
          .execute();
        if (percent < 100 || q.device_minutes_action !== 'stop_running') return [];
        const before = await trx
          .selectFrom('device')
          .select((eb) => eb.fn.countAll<number>().as('n'))
          .where('tenant_id', 'in', subtree)
          .where('desired_power', '=', 'running')
          .where('state', 'not in', ['deleting', 'deleted'])
          .executeTakeFirstOrThrow();
        stopped += Number(before.n);
        return stopTenantDevices(trx, subtree, now);
      });
      for (const hostId of hosts) this.options.desiredChanged(hostId);
      if (announced.some((a) => a.tenantId === q.tenant_id)) this.options.announced?.();
    }
    if (announced.length > 0 || stopped > 0) {
      this.#log.info(
        { announced: announced.map((a) => ({ tenantId: a.tenantId, percent: a.percent })), stopped },
        'device minutes enforced',
      );
    }
    return { checked: limited.length, announced, stopped };
  }
}

/**
 * The webhook event of a threshold: QUOTA_THRESHOLD_REACHED for the limited tenant (its webhooks
 * and its ancestors' receive it), with the use and the limit it was read against.
 */
export function announceMinutesThreshold(trx: Transaction<Database>, t: MinutesThreshold) {
  return enqueueWebhookEvent(trx, {
    tenantId: t.tenantId,
    type: WebhookEventType.QUOTA_THRESHOLD_REACHED,
    quotaThreshold: {
      thresholdPercent: t.percent,
      dimension: 'max_device_minutes',
      quotaUsage: {
        tenantId: t.tenantId,
        deviceMinutes: BigInt(t.usedMinutes),
        periodStartTime: ts(t.periodStart),
        periodEndTime: ts(t.periodEnd),
        quota: { tenantId: t.tenantId, maxDeviceMinutes: BigInt(t.limitMinutes) },
        deviceMinutesExhausted: t.percent === 100,
      },
    },
  });
}
