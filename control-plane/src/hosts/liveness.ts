// Liveness: a host silent for the heartbeat TTL is unreachable; the phones of a host unreachable
// for longer than the lost grace become lost. Times come from deps.clock. The TTL counts from this
// replica's start at the earliest (Nomad does the same after a leader election): agents need a
// moment to reconnect after a control-plane restart, and an outage of the control plane is not an
// outage of the hosts.
//
// With several replicas every one runs the local part (flush heartbeats, cut off silent streams,
// pings); only the leader (advisory lock, cluster/cluster.ts) marks hosts unreachable and phones
// lost, and clears the stream records of replicas that are gone (a host is connected while a live
// replica holds its stream), and its TTL counts from when it took over. The updates are conditional
// and idempotent, so a leadership handover that briefly overlaps is still correct.
import type { Deps } from '../deps.js';
import { markHostDevicesLost } from '../devices/loss.js';
import { PLACED_STATES } from '../devices/state-machine.js';
import type { Logger } from '../logger.js';
import { hostsUnreachableSince, markUnreachable, releaseStreams, streamHolders } from '../store/hosts.js';

export interface MonitorOptions {
  intervalMs: number;
  /** When this replica started leading the liveness jobs; undefined while another replica leads. */
  leadingSince(): Date | undefined;
  /** This replica's id: its own stream records are its gateway's to keep. */
  replicaId: string;
  /** Whether the replica named is still alive (holds its session); without one, only this one is. */
  replicaAlive?: (replicaId: string) => Promise<boolean>;
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
    this.#timer = setInterval(() => void this.#tickOnce(), options.intervalMs);
    this.#timer.unref();
    // At once too: a leader that just started clears the streams of the replicas that are gone.
    setImmediate(() => void this.#tickOnce()).unref();
  }

  #tickOnce(): Promise<void> {
    this.#running ??= this.tick().finally(() => (this.#running = undefined));
    return this.#running;
  }

  /** One pass: forget dead replicas' streams, mark silent hosts unreachable, then long-unreachable hosts' phones lost. */
  async tick(): Promise<void> {
    try {
      await this.options.beforeTick();
      const since = this.options.leadingSince();
      if (since === undefined) return;
      await this.#sweepStreams();
      const now = this.deps.clock.now();
      const unreachable = await this.#markUnreachable(now, since);
      if (unreachable.length > 0) this.options.onUnreachable(unreachable);
      await this.#markLost(now);
    } catch (err) {
      this.logger.error({ err }, 'liveness check failed');
    }
  }

  /** Stream records of replicas that are gone (crashed without releasing them) are cleared. */
  async #sweepStreams(): Promise<void> {
    for (const holder of await streamHolders(this.deps.db)) {
      if (holder === this.options.replicaId) continue;
      const alive = this.options.replicaAlive ? await this.options.replicaAlive(holder) : false;
      if (alive) continue;
      await releaseStreams(this.deps.db, holder);
      this.logger.warn({ replicaId: holder }, 'released the host streams of a replica that is gone');
    }
  }

  async #markUnreachable(now: Date, since: Date): Promise<string[]> {
    const { heartbeatTtlMs } = this.deps.config;
    if (now.getTime() - since.getTime() < heartbeatTtlMs) return [];
    const rows = await markUnreachable(this.deps.db, new Date(now.getTime() - heartbeatTtlMs), now);
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
    for (const { id } of await hostsUnreachableSince(this.deps.db, cutoff, PLACED_STATES)) {
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
