// The drainer (Nomad's drainer): runs on the leader replica only, creates the drains' work and never
// places anything itself. Each pass visits every host with a drain in progress: for MIGRATE it
// submits a move for every device that no longer runs there (STOPPED, ERROR or LOST) through the
// replica's planner, the entry point creates use; then it ends drains that are done (COMPLETED) or
// past their deadline (FAILED, remaining devices set to stopped). It also re-places the LOST
// devices whose host was deleted (DeleteHost with force), on every pass until one fits. Reads of a
// host never start work.
//
// Exactly once: a move locks the device and then its host and re-checks both, so a pass of a leader
// that has just lost the leadership, overlapping the new leader's, moves nothing twice; a drain's
// end is conditional on it still being in progress, so it ends once.
import { WebhookEventType } from '@cphone/proto';
import { type Kysely, sql, type Transaction } from 'kysely';
import { PLATFORM_TENANT_ID } from '../auth/bootstrap.js';
import type { Clock } from '../clock.js';
import { askOfDevice } from '../devices/drafts.js';
import { bumpDesiredRevision } from '../devices/lifecycle.js';
import { DomainError, FailedPreconditionError } from '../errors.js';
import type { Logger } from '../logger.js';
import { applyPlan } from '../placement/applier.js';
import type { JobContext, Planner } from '../placement/planner.js';
import { devicesOnHost, lockDevices } from '../store/devices.js';
import { drainingHosts, endDrain, findHost, lockDrain } from '../store/hosts.js';
import type { Database, DrainMode } from '../store/schema.js';
import { enqueueWebhookEvent } from '../webhooks/outbox.js';
import {
  ACTIVE_STATES,
  drainRemaining,
  lockHostAndDevices,
  MOVABLE_STATES,
  recordMove,
  stopDevicesOn,
} from './drain.js';
import { hostToProto } from './host-view.js';

export interface DrainerOptions {
  readonly db: Kysely<Database>;
  readonly clock: Clock;
  readonly logger: Logger;
  readonly planner: Planner;
  /** Whether this replica leads now (only the leader drains). */
  readonly isLeader: () => boolean;
  /** Tells the gateway a host's desired set changed (after a commit). */
  readonly desiredChanged: (hostId: string) => void;
  /** Pass period (default 500 ms); a nudge runs one sooner. */
  readonly intervalMs?: number | undefined;
}

export interface PassResult {
  moved: { deviceId: string; from: string; to: string }[];
  failed: { deviceId: string; reason: string }[];
  ended: { hostId: string; state: 'completed' | 'failed' }[];
}

type MoveOutcome =
  | { deviceId: string; from: string; to: string }
  | { deviceId: string; reason: string }
  | undefined;

export class Drainer {
  #timer: NodeJS.Timeout | undefined;
  #running: Promise<PassResult> | undefined;
  #again = false;
  readonly #log: Logger;

  constructor(private readonly options: DrainerOptions) {
    this.#log = options.logger.child({ module: 'drainer' });
  }

  start(): void {
    this.#timer = setInterval(() => void this.nudge(), this.options.intervalMs ?? 500);
    this.#timer.unref();
  }

  /**
   * Runs a pass now if this replica leads (a pass in flight runs once more after it). Resolves
   * with what the pass did, empty on a follower.
   */
  nudge(): Promise<PassResult> {
    if (this.#running) {
      this.#again = true;
      return this.#running;
    }
    this.#running = (async () => {
      let result: PassResult = { moved: [], failed: [], ended: [] };
      try {
        do {
          this.#again = false;
          if (!this.options.isLeader()) break;
          result = await this.pass();
        } while (this.#again);
      } catch (err) {
        this.#log.error({ err }, 'drain pass failed');
      } finally {
        this.#running = undefined;
      }
      return result;
    })();
    return this.#running;
  }

  /** One pass over every host with a drain in progress. */
  async pass(): Promise<PassResult> {
    const result: PassResult = { moved: [], failed: [], ended: [] };
    for (const host of await drainingHosts(this.options.db)) {
      const mode = host.drain_last_mode ?? 'stop';
      const expired = host.drain_deadline !== null && host.drain_deadline <= this.options.clock.now();
      if (mode === 'migrate' && !expired) await this.#moveAll(host.id, result);
      const ended = await this.#settle(host.id, mode, expired);
      if (ended) result.ended.push({ hostId: host.id, state: ended });
    }
    await this.#replaceOrphans(result);
    if (result.moved.length + result.failed.length + result.ended.length > 0) {
      this.#log.info(
        { moved: result.moved.length, failed: result.failed, ended: result.ended },
        'drain pass',
      );
    }
    return result;
  }

  close(): Promise<unknown> {
    clearInterval(this.#timer);
    this.#timer = undefined;
    return this.#running ?? Promise.resolve();
  }

  async #moveAll(hostId: string, result: PassResult): Promise<void> {
    const candidates = await this.options.db
      .selectFrom('device')
      .select('id')
      .where('host_id', '=', hostId)
      .where('delete_time', 'is', null)
      .where('state', 'in', MOVABLE_STATES)
      .orderBy('id')
      .execute();
    const outcomes = await Promise.all(
      candidates.map(({ id }) => this.options.planner.submit({ run: (ctx) => moveDrained(ctx, hostId, id) })),
    );
    for (const outcome of outcomes) {
      if (!outcome) continue;
      if ('to' in outcome) result.moved.push(outcome);
      else result.failed.push(outcome);
    }
  }

  /** LOST devices without a host (it was deleted): placed again, by the rules they were created with. */
  async #replaceOrphans(result: PassResult): Promise<void> {
    const orphans = await this.options.db
      .selectFrom('device')
      .select('id')
      .where('host_id', 'is', null)
      .where('state', '=', 'lost')
      .where('delete_time', 'is', null)
      .orderBy('id')
      .execute();
    const outcomes = await Promise.all(
      orphans.map(({ id }) => this.options.planner.submit({ run: (ctx) => this.#replace(ctx, id) })),
    );
    for (const outcome of outcomes) {
      if (!outcome) continue;
      if ('to' in outcome) result.moved.push(outcome);
      else result.failed.push(outcome);
    }
  }

  async #replace(
    { trx, apply }: Parameters<Parameters<Planner['submit']>[0]['run']>[0],
    deviceId: string,
  ): Promise<MoveOutcome> {
    const [device] = await lockDevices(trx, [deviceId]);
    if (!device || device.host_id !== null || device.state !== 'lost' || device.delete_time !== null)
      return undefined;
    await sql`savepoint replace`.execute(trx);
    try {
      const image = await trx
        .selectFrom('image')
        .selectAll()
        .where('id', '=', device.image_id)
        .executeTakeFirst();
      if (!image)
        throw new FailedPreconditionError(`its image ${JSON.stringify(device.image_id)} no longer exists`);
      const applied = await apply({
        tenantId: device.tenant_id,
        moves: [
          {
            deviceId,
            tenantId: device.tenant_id,
            fromHostId: null,
            fromState: 'lost',
            ask: askOfDevice(device, image),
            reason: 'REPLACED',
            by: 'the control plane (its host was deleted)',
          },
        ],
        seed: deviceId,
      });
      await sql`release savepoint replace`.execute(trx);
      return { deviceId, from: '', to: applied.hostOf[0] ?? '' };
    } catch (error) {
      if (!(error instanceof DomainError)) throw error;
      await sql`rollback to savepoint replace`.execute(trx);
      return { deviceId, reason: error.message.replace(`device ${deviceId} `, '') };
    }
  }

  /** Ends the drain when nothing remains (COMPLETED) or its deadline passed (FAILED). */
  async #settle(
    hostId: string,
    mode: DrainMode,
    expired: boolean,
  ): Promise<'completed' | 'failed' | undefined> {
    const { db, clock } = this.options;
    const remaining = await drainRemaining(db, hostId, mode);
    if (remaining > 0 && !expired) return undefined;
    const now = clock.now();
    const state = remaining === 0 ? 'completed' : 'failed';
    const ended = await db.transaction().execute(async (trx) => {
      await lockHostAndDevices(trx, hostId);
      if (!(await endDrain(trx, hostId, state, now))) return false;
      // The deadline stops what remains, whatever the mode; the held powers are lifted either way.
      if (state === 'failed') await stopDevicesOn(trx, hostId, now);
      await bumpDesiredRevision(trx, hostId, now);
      // Ops hear of it through the platform tenant's webhooks, with the drain's end in the host.
      const host = await findHost(trx, hostId);
      if (host) {
        await enqueueWebhookEvent(
          trx,
          {
            tenantId: PLATFORM_TENANT_ID,
            type: WebhookEventType.HOST_DRAINED,
            host: hostToProto(host, remaining),
          },
          { now },
        );
      }
      return true;
    });
    if (!ended) return undefined;
    try {
      this.options.desiredChanged(hostId);
    } catch (err) {
      this.#log.warn({ err, hostId }, 'desiredChanged failed');
    }
    return state;
  }
}

/** One move, as a planner job: undefined when the device is no longer this drain's to move. */
async function moveDrained(
  { trx, now, apply }: Pick<JobContext, 'trx' | 'now' | 'apply'>,
  hostId: string,
  deviceId: string,
): Promise<MoveOutcome> {
  const [device] = await lockDevices(trx, [deviceId]);
  if (
    !device ||
    device.host_id !== hostId ||
    device.delete_time !== null ||
    !MOVABLE_STATES.includes(device.state)
  ) {
    return undefined;
  }
  // The host after the device, like every other writer.
  const drain = await lockDrain(trx, hostId);
  if (drain?.drain_state !== 'in_progress' || drain.drain_mode !== 'migrate') return undefined;
  // A refused move writes nothing but its failure: roll back to here, whatever the refusal's point.
  await sql`savepoint move`.execute(trx);
  try {
    const image = await trx
      .selectFrom('image')
      .selectAll()
      .where('id', '=', device.image_id)
      .executeTakeFirst();
    if (!image)
      throw new FailedPreconditionError(`its image ${JSON.stringify(device.image_id)} no longer exists`);
    const applied = await apply({
      tenantId: device.tenant_id,
      moves: [
        {
          deviceId,
          tenantId: device.tenant_id,
          fromHostId: hostId,
          fromState: device.state,
          ask: askOfDevice(device, image),
          reason: 'MIGRATED',
          by: 'a drain',
        },
      ],
      seed: deviceId,
    });
    const to = applied.hostOf[0] ?? '';
    await sql`release savepoint move`.execute(trx);
    await recordMove(trx, hostId, deviceId, { target: to }, now);
    return { deviceId, from: hostId, to };
  } catch (error) {
    if (!(error instanceof DomainError)) throw error;
    await sql`rollback to savepoint move`.execute(trx);
    const reason = error.message.replace(`device ${deviceId} `, '');
    await recordMove(trx, hostId, deviceId, { failure: reason }, now);
    return { deviceId, reason };
  }
}

/** Where a DrainHost dry run would move each device (host-service.ts). */
export interface MovePreview {
  deviceId: string;
  targetHostId: string;
  failure: string;
}

/**
 * Inside a dry run's transaction, just after its MIGRATE drain started: moves every device of the
 * host the way the drainer would, one after another, each move seeing the capacity the earlier
 * ones took. The drainer moves a device only once it has stopped, so the devices still active are
 * first marked stopped, as their agent would report them; the transaction is rolled back after.
 */
export async function previewMoves(
  trx: Transaction<Database>,
  hostId: string,
  now: Date,
): Promise<MovePreview[]> {
  const devices = await devicesOnHost(trx, hostId)
    .select(['id', 'state'])
    .where('state', '!=', 'deleting')
    .orderBy('id')
    .execute();
  const active = devices.filter((d) => ACTIVE_STATES.includes(d.state)).map((d) => d.id);
  if (active.length > 0) {
    await trx
      .updateTable('device')
      .set({ state: 'stopped', update_time: now })
      .where('id', 'in', active)
      .execute();
  }
  const previews: MovePreview[] = [];
  for (const { id } of devices) {
    const outcome = await moveDrained(
      { trx, now, apply: (plan) => applyPlan(trx, plan, { now }) },
      hostId,
      id,
    );
    if (!outcome) continue;
    previews.push(
      'to' in outcome
        ? { deviceId: id, targetHostId: outcome.to, failure: '' }
        : { deviceId: id, targetHostId: '', failure: outcome.reason },
    );
  }
  return previews;
}
