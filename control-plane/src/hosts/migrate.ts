// A MIGRATE drain moves every device off the host: each is first stopped where it is (desired power
// stopped), and once the agent reports it STOPPED (or it is ERROR, or LOST with its host gone) it is
// re-placed in one transaction by the plan applier, with the same spec and placement rules as at
// create (the draining host is not ready, so the scheduler passes it over). Its row then names the
// new host: the old host's agent sees it leave its desired set and removes the container and its
// data (v1 carries no data over), the new host's agent sees it arrive and creates it.
//
// A device that fits nowhere stays on the draining host, stopped, with the reason recorded; every
// later pass (each progress read, each device reaching STOPPED on the host) tries it again, since
// capacity may be freed or added, until the drain's deadline, when settleDrain ends it FAILED. A
// drain without a deadline stays in progress, reporting the failures, until the operator cancels
// it with UncordonHost (which gives the devices still there their desired power back).
import { fromJson, type JsonValue } from '@bufbuild/protobuf';
import { DeviceSpecSchema, PlacementSchema } from '@cphone/proto';
import type { Insertable, Kysely, Transaction, Updateable } from 'kysely';
import type { Principal } from '../auth/principal.js';
import type { Clock } from '../clock.js';
import { placementRules } from '../devices/drafts.js';
import { bumpDesiredRevision } from '../devices/lifecycle.js';
import { transition } from '../devices/state-machine.js';
import { DomainError, FailedPreconditionError } from '../errors.js';
import type { Logger } from '../logger.js';
import { applyPlan, type DeviceDraft } from '../placement/apply.js';
import { FleetCache } from '../placement/fleet-cache.js';
import { retryOnConflict } from '../placement/retry.js';
import type { Database, DeviceStateName, DeviceTable, DrainDeviceTable } from '../store/schema.js';

/** States from which a device is moved: nothing of it runs on the old host any more. */
export const MOVABLE_STATES: readonly DeviceStateName[] = ['stopped', 'error', 'lost'];

/**
 * Starts a MIGRATE drain's device work inside the transaction that begins the drain: records each
 * device's desired power (replacing the host's previous drain's records), then asks every device
 * set to run to stop in place. Returns the number of devices asked to stop.
 */
export async function beginMigrate(trx: Transaction<Database>, hostId: string, now: Date): Promise<number> {
  await trx.deleteFrom('drain_device').where('host_id', '=', hostId).execute();
  await recordNewDevices(trx, hostId, now);
  return stopForMigrate(trx, hostId, now);
}

/**
 * Records how one device's move went: where it went, or why it could not move (a later attempt
 * overwrites both).
 */
async function recordOutcome(
  trx: Transaction<Database>,
  row: Pick<
    Insertable<DrainDeviceTable>,
    'host_id' | 'device_id' | 'tenant_id' | 'desired_power' | 'update_time'
  >,
  outcome: Pick<Updateable<DrainDeviceTable>, 'target_host_id' | 'failure' | 'migrate_time'>,
): Promise<void> {
  await trx
    .insertInto('drain_device')
    .values({ ...row, ...outcome })
    .onConflict((c) =>
      c.columns(['host_id', 'device_id']).doUpdateSet({ ...outcome, update_time: row.update_time }),
    )
    .execute();
}

/** Records the devices on the host the drain has no record of yet, with their desired power. */
async function recordNewDevices(trx: Transaction<Database>, hostId: string, now: Date): Promise<void> {
  await trx
    .insertInto('drain_device')
    .columns(['host_id', 'device_id', 'tenant_id', 'desired_power', 'update_time'])
    .expression((eb) =>
      eb
        .selectFrom('device')
        .select((s) => [
          s.val(hostId).as('host_id'),
          'device.id',
          'device.tenant_id',
          'device.desired_power',
          s.val(now).as('update_time'),
        ])
        .where('device.host_id', '=', hostId)
        .where('device.delete_time', 'is', null)
        .where('device.state', 'not in', ['deleting', 'deleted']),
    )
    .onConflict((c) => c.columns(['host_id', 'device_id']).doNothing())
    .execute();
}

/**
 * Stops every device on the host that is set to run (again: a StartDevice during the drain would
 * keep it on the host forever); its record keeps 'running' so it runs again on its new host.
 */
async function stopForMigrate(trx: Transaction<Database>, hostId: string, now: Date): Promise<number> {
  const toStop = await trx
    .selectFrom('device')
    .select('id')
    .where('host_id', '=', hostId)
    .where('delete_time', 'is', null)
    .where('desired_power', '=', 'running')
    .where('state', 'not in', ['deleting', 'deleted'])
    .execute();
  if (toStop.length === 0) return 0;
  const ids = toStop.map((d) => d.id);
  await trx
    .updateTable('drain_device')
    .set({ desired_power: 'running', update_time: now })
    .where('host_id', '=', hostId)
    .where('device_id', 'in', ids)
    .execute();
  await trx
    .updateTable('device')
    .set({ desired_power: 'stopped', update_time: now })
    .where('id', 'in', ids)
    .execute();
  await bumpDesiredRevision(trx, hostId, now);
  return ids.length;
}

/**
 * UncordonHost cancelled a MIGRATE drain: the devices still on the host get the desired power they
 * had before it. Returns whether the host's desired set changed.
 */
export async function restoreAfterCancel(
  trx: Transaction<Database>,
  hostId: string,
  now: Date,
): Promise<boolean> {
  const restored = await trx
    .updateTable('device')
    .set({ desired_power: 'running', update_time: now })
    .where('host_id', '=', hostId)
    .where('delete_time', 'is', null)
    .where('state', 'not in', ['deleting', 'deleted'])
    .where('desired_power', '=', 'stopped')
    .where('id', 'in', (eb) =>
      eb
        .selectFrom('drain_device')
        .select('device_id')
        .where('host_id', '=', hostId)
        .where('target_host_id', 'is', null)
        .where('desired_power', '=', 'running'),
    )
    .executeTakeFirst();
  if (restored.numUpdatedRows === 0n) return false;
  await bumpDesiredRevision(trx, hostId, now);
  return true;
}

export interface MigrateFailure {
  deviceId: string;
  reason: string;
}

export interface MigrateProgress {
  /** Devices of this drain re-placed on another host. */
  migrated: number;
  /** Devices still on the host whose last re-placement attempt failed, with why. */
  failures: MigrateFailure[];
}

/** What the host's current (or last) MIGRATE drain has moved and failed to move. */
export async function migrateProgress(db: Kysely<Database>, hostId: string): Promise<MigrateProgress> {
  const [moved, failed] = await Promise.all([
    db
      .selectFrom('drain_device')
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .where('host_id', '=', hostId)
      .where('target_host_id', 'is not', null)
      .executeTakeFirstOrThrow(),
    db
      .selectFrom('drain_device')
      .innerJoin('device', 'device.id', 'drain_device.device_id')
      .select(['drain_device.device_id', 'drain_device.failure'])
      .where('drain_device.host_id', '=', hostId)
      .where('drain_device.target_host_id', 'is', null)
      .where('drain_device.failure', '!=', '')
      .where('device.host_id', '=', hostId)
      .where('device.state', 'not in', ['deleting', 'deleted'])
      .orderBy('drain_device.device_id')
      .execute(),
  ]);
  return {
    migrated: Number(moved.n),
    failures: failed.map((f) => ({ deviceId: f.device_id, reason: f.failure })),
  };
}

export interface MigratorDeps {
  readonly db: Kysely<Database>;
  readonly clock: Clock;
  readonly logger: Logger;
  /** Called after a commit that changed a host's desired set (gateway.desiredChanged). */
  readonly desiredChanged: (hostId: string) => void;
}

export interface MigratePass {
  moved: { deviceId: string; from: string; to: string }[];
  failed: MigrateFailure[];
}

export interface Migrator {
  /**
   * One re-placement pass over the host's devices if a MIGRATE drain is in progress there (a no-op
   * otherwise). Passes for one host are serialized: a call during a pass makes it run once more
   * and resolves when that is done.
   */
  migrate(hostId: string): Promise<void>;
}

// The drain moves devices on behalf of the platform: their placement rules (a pin included) are
// those the device was created with, checked as an operator would.
const DRAIN_PRINCIPAL: Principal = {
  keyId: 'drain',
  tenantId: '',
  role: 'platform_admin',
  visibleTenants: [],
};

type Candidate = Pick<
  DeviceTable,
  'id' | 'tenant_id' | 'state' | 'display_name' | 'image_id' | 'restart_policy'
> & {
  labels: Record<string, string>;
  spec: Record<string, unknown>;
  placement: Record<string, unknown>;
  vcpu_millicores: number;
  memory_mib: number;
  storage_gib: number;
  host_id: string | null;
  delete_time: Date | null;
};

export function createMigrator(deps: MigratorDeps): Migrator {
  const { db, clock } = deps;
  const log = deps.logger.child({ module: 'drain-migrate' });
  const fleet = new FleetCache(db);
  const inflight = new Map<string, { again: boolean; done: Promise<void> }>();

  function notify(hostIds: Iterable<string>): void {
    for (const hostId of hostIds) {
      try {
        deps.desiredChanged(hostId);
      } catch (err) {
        log.warn({ err, hostId }, 'could not notify the gateway of a desired-state change');
      }
    }
  }

  async function pass(hostId: string): Promise<MigratePass | undefined> {
    const now = clock.now();
    const host = await db
      .selectFrom('host')
      .select(['name', 'drain_state', 'drain_mode', 'drain_deadline'])
      .where('id', '=', hostId)
      .executeTakeFirst();
    if (host?.drain_state !== 'in_progress' || host.drain_mode !== 'migrate') return undefined;
    // Past the deadline settleDrain ends the drain FAILED; nothing moves any more.
    if (host.drain_deadline && host.drain_deadline.getTime() <= now.getTime()) return undefined;
    const stopped = await db.transaction().execute(async (trx) => {
      await recordNewDevices(trx, hostId, now);
      return stopForMigrate(trx, hostId, now);
    });
    if (stopped > 0) notify([hostId]);
    const candidates = await db
      .selectFrom('device')
      .select('id')
      .where('host_id', '=', hostId)
      .where('delete_time', 'is', null)
      .where('state', 'in', MOVABLE_STATES)
      .orderBy('id')
      .execute();
    const result: MigratePass = { moved: [], failed: [] };
    for (const { id } of candidates) {
      const outcome = await retryOnConflict(() => moveOne(hostId, host.name, id));
      if (!outcome) continue;
      if ('to' in outcome) {
        result.moved.push(outcome);
        notify([hostId, outcome.to]);
      } else result.failed.push(outcome);
    }
    if (result.moved.length + result.failed.length > 0) {
      log.info(
        { hostId, moved: result.moved.length, failed: result.failed },
        'drain re-placed devices off the host',
      );
    }
    return result;
  }

  /** Moves one device in one transaction; undefined when it is no longer this pass's to move. */
  async function moveOne(
    hostId: string,
    hostName: string,
    deviceId: string,
  ): Promise<{ deviceId: string; from: string; to: string } | MigrateFailure | undefined> {
    const now = clock.now();
    return db.transaction().execute(async (trx) => {
      const device = (await trx
        .selectFrom('device')
        .select([
          'id',
          'tenant_id',
          'state',
          'display_name',
          'image_id',
          'restart_policy',
          'labels',
          'spec',
          'placement',
          'vcpu_millicores',
          'memory_mib',
          'storage_gib',
          'host_id',
          'delete_time',
        ])
        .where('id', '=', deviceId)
        .forUpdate()
        .executeTakeFirst()) as Candidate | undefined;
      if (
        !device ||
        device.host_id !== hostId ||
        device.delete_time !== null ||
        !MOVABLE_STATES.includes(device.state)
      ) {
        return undefined;
      }
      // Locked before the target hosts, like every other writer of this host's allocation.
      const drain = await trx
        .selectFrom('host')
        .select(['drain_state', 'drain_mode'])
        .where('id', '=', hostId)
        .forUpdate()
        .executeTakeFirst();
      if (drain?.drain_state !== 'in_progress' || drain.drain_mode !== 'migrate') return undefined;
      const record = await trx
        .selectFrom('drain_device')
        .select('desired_power')
        .where('host_id', '=', hostId)
        .where('device_id', '=', deviceId)
        .executeTakeFirst();
      const desiredPower = record?.desired_power ?? 'stopped';
      const row = {
        host_id: hostId,
        device_id: deviceId,
        tenant_id: device.tenant_id,
        desired_power: desiredPower,
        update_time: now,
      };
      let draft: DeviceDraft;
      let moved: { to: string; toName: string };
      try {
        draft = await draftOf(trx, device, desiredPower);
        const applied = await applyPlan(
          trx,
          { tenantId: device.tenant_id, devices: [draft], seed: device.id, now, cache: fleet },
          async ({ hostOf, locked }) => {
            const to = hostOf[0] ?? '';
            return { to, toName: locked.find((r) => r.id === to)?.name ?? to };
          },
        );
        moved = applied.written;
      } catch (error) {
        if (!(error instanceof DomainError)) throw error;
        const reason = error.message.replace(/^requests\[0\] /, '');
        await recordOutcome(trx, row, { failure: reason });
        return { deviceId, reason };
      }
      await transition(trx, {
        deviceId,
        tenantId: device.tenant_id,
        from: device.state,
        to: 'scheduled',
        reason: 'MIGRATED',
        message: `moved from host ${hostName} (${hostId}) to host ${moved.toName} (${moved.to}) by a drain`,
        set: { host_id: moved.to, adb_endpoint: '', observed_spec_revision: 0 },
        now,
      });
      await trx
        .updateTable('device')
        .set({ desired_power: desiredPower, update_time: now })
        .where('id', '=', deviceId)
        .execute();
      await releaseAllocation(trx, hostId, device);
      await bumpDesiredRevision(trx, hostId, now);
      await recordOutcome(trx, row, { target_host_id: moved.to, failure: '', migrate_time: now });
      return { deviceId, from: hostId, to: moved.to };
    });
  }

  return {
    migrate(hostId) {
      const current = inflight.get(hostId);
      if (current) {
        current.again = true;
        return current.done;
      }
      const entry = { again: false, done: Promise.resolve() };
      entry.done = (async () => {
        try {
          do {
            entry.again = false;
            await pass(hostId);
          } while (entry.again);
        } finally {
          inflight.delete(hostId);
        }
      })();
      inflight.set(hostId, entry);
      return entry.done;
    },
  };
}

/** The device as a draft for the plan applier: what it was created with, its id and its power. */
async function draftOf(
  trx: Transaction<Database>,
  device: Candidate,
  desiredPower: 'running' | 'stopped',
): Promise<DeviceDraft> {
  const image = await trx
    .selectFrom('image')
    .selectAll()
    .where('id', '=', device.image_id)
    .executeTakeFirst();
  if (!image) {
    throw new FailedPreconditionError(`its image ${JSON.stringify(device.image_id)} no longer exists`);
  }
  const spec = fromJson(DeviceSpecSchema, device.spec as JsonValue, { ignoreUnknownFields: true });
  const placement = fromJson(PlacementSchema, device.placement as JsonValue, { ignoreUnknownFields: true });
  const rules = placementRules('placement', placement, image, spec.gpuMode, DRAIN_PRINCIPAL);
  return {
    id: device.id,
    displayName: device.display_name,
    labels: device.labels,
    imageId: device.image_id,
    spec: device.spec,
    resources: {
      vcpuMillicores: device.vcpu_millicores,
      memoryMib: device.memory_mib,
      storageGib: device.storage_gib,
    },
    placement: device.placement,
    desiredPower,
    restartPolicy: device.restart_policy,
    image: { id: device.image_id, arch: rules.arch, requiredLabels: image.required_labels },
    nodeSelector: rules.nodeSelector,
    strategy: rules.strategy,
    spreadTenant: rules.spreadTenant,
    pinHostId: rules.pinHostId,
  };
}

/** The device's resources leave the old host, as on a completed deletion. */
async function releaseAllocation(
  trx: Transaction<Database>,
  hostId: string,
  device: Pick<Candidate, 'vcpu_millicores' | 'memory_mib' | 'storage_gib'>,
): Promise<void> {
  await trx
    .updateTable('host')
    .set((eb) => ({
      allocated_vcpu_millicores: eb.fn('greatest', [
        eb('allocated_vcpu_millicores', '-', device.vcpu_millicores),
        eb.lit(0),
      ]),
      allocated_memory_mib: eb.fn('greatest', [
        eb('allocated_memory_mib', '-', device.memory_mib),
        eb.lit(0),
      ]),
      allocated_storage_gib: eb.fn('greatest', [
        eb('allocated_storage_gib', '-', device.storage_gib),
        eb.lit(0),
      ]),
      allocated_devices: eb.fn('greatest', [eb('allocated_devices', '-', 1), eb.lit(0)]),
    }))
    .where('id', '=', hostId)
    .execute();
}
