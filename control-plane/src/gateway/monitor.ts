// Liveness: a host silent for the heartbeat TTL is unreachable; the phones of a host unreachable
// for longer than the lost grace become lost. Times come from deps.clock. The TTL counts from this
// replica's start at the earliest (Nomad does the same after a leader election): agents need a
// moment to reconnect after a control-plane restart, and an outage of the control plane is not an
// outage of the hosts.
//
// With several replicas every one runs the local part (flush heartbeats, cut off silent streams,
// pings); only the leader (advisory lock, cluster/cluster.ts) marks hosts unreachable and phones
// lost, and its TTL counts from when it took over. The updates are conditional and idempotent, so
// a leadership handover that briefly overlaps is still correct.
import type { Kysely } from 'kysely';
import type { Deps } from '../deps.js';
import { PLACED_STATES, transition } from '../devices/state-machine.js';
import type { Logger } from '../logger.js';
import type { Database } from '../store/schema.js';

export interface MonitorOptions {
  intervalMs: number;
  /** When this replica started leading the liveness jobs; undefined while another replica leads. */
  leadingSince(): Date | undefined;
  /** Runs before each check (flush heartbeats, cut off silent local streams). */
  beforeTick(): Promise<void>;
  /** Hosts just marked unreachable (their local streams, if any, are stale). */
  onUnreachable(hostIds: string[]): void;
}

export class LivenessMonitor {
  #timer: NodeJS.Timeout | undefined;
  #running: Promise<void> | undefined;

  constructor(
    private readonly deps: Pick<Deps, 'db' | 'config' | 'clock' | 'metrics'>,
    private readonly logger: Logger,
    private readonly options: MonitorOptions,
  ) {
    this.#timer = setInterval(() => {
      if (!this.#running) this.#running = this.tick().finally(() => (this.#running = undefined));
    }, options.intervalMs);
    this.#timer.unref();
  }

  /** One pass: mark silent hosts unreachable, then long-unreachable hosts' phones lost. */
  async tick(): Promise<void> {
    try {
      await this.options.beforeTick();
      const since = this.options.leadingSince();
      if (since === undefined) return;
      const now = this.deps.clock.now();
      const unreachable = await this.#markUnreachable(now, since);
      if (unreachable.length > 0) this.options.onUnreachable(unreachable);
      await this.#markLost(now);
    } catch (err) {
      this.logger.error({ err }, 'liveness check failed');
    }
  }

  async #markUnreachable(now: Date, since: Date): Promise<string[]> {
    const { heartbeatTtlMs } = this.deps.config;
    if (now.getTime() - since.getTime() < heartbeatTtlMs) return [];
    const cutoff = new Date(now.getTime() - heartbeatTtlMs);
    const rows = await this.deps.db
      .updateTable('host')
      .set({ connection: 'unreachable', unreachable_since: now, update_time: now })
      .where('connection', '=', 'ready')
      .where((eb) => eb.or([eb('last_heartbeat_time', '<', cutoff), eb('last_heartbeat_time', 'is', null)]))
      .returning(['id', 'last_heartbeat_time'])
      .execute();
    for (const row of rows) {
      this.deps.metrics.hostConnectionChanges.inc({ to: 'unreachable' });
      this.logger.warn(
        { hostId: row.id, lastHeartbeatTime: row.last_heartbeat_time, ttlMs: heartbeatTtlMs },
        'host unreachable: no heartbeat within the TTL',
      );
    }
    return rows.map((r) => r.id);
  }

  async #markLost(now: Date): Promise<void> {
    const cutoff = new Date(now.getTime() - this.deps.config.lostGraceMs);
    const hosts = await this.deps.db
      .selectFrom('host')
      .select('id')
      .where('connection', '=', 'unreachable')
      .where('unreachable_since', '<=', cutoff)
      .where((eb) =>
        eb.exists(
          eb
            .selectFrom('device')
            .select('device.id')
            .whereRef('device.host_id', '=', 'host.id')
            .where('device.state', 'in', PLACED_STATES),
        ),
      )
      .execute();
    for (const { id } of hosts) {
      const lost = await markHostDevicesLost(this.deps.db, id, cutoff, now);
      if (lost.length === 0) continue;
      this.deps.metrics.devicesLost.inc(lost.length);
      this.logger.warn({ hostId: id, devices: lost }, 'devices lost: host unreachable past the grace');
    }
  }

  async close(): Promise<void> {
    clearInterval(this.#timer);
    this.#timer = undefined;
    await this.#running;
  }
}

/** Moves the host's placed devices to lost, if the host is still unreachable since before `cutoff`. */
export async function markHostDevicesLost(
  db: Kysely<Database>,
  hostId: string,
  cutoff: Date,
  now: Date,
): Promise<string[]> {
  return db.transaction().execute(async (trx) => {
    // The host row lock orders this against a Hello that makes the host ready again.
    const host = await trx
      .selectFrom('host')
      .select(['id', 'unreachable_since'])
      .where('id', '=', hostId)
      .where('connection', '=', 'unreachable')
      .where('unreachable_since', '<=', cutoff)
      .forUpdate()
      .executeTakeFirst();
    if (!host) return [];
    const devices = await trx
      .selectFrom('device')
      .select(['id', 'tenant_id', 'state'])
      .where('host_id', '=', hostId)
      .where('state', 'in', PLACED_STATES)
      .orderBy('id')
      .forUpdate()
      .execute();
    for (const device of devices) {
      await transition(trx, {
        deviceId: device.id,
        tenantId: device.tenant_id,
        from: device.state,
        to: 'lost',
        reason: 'HOST_UNREACHABLE',
        message: `host ${hostId} unreachable since ${host.unreachable_since?.toISOString()}`,
        set: { adb_endpoint: '' },
        now,
      });
    }
    return devices.map((d) => d.id);
  });
}
