// Where a replica's fleet view hears of host rows changed by anyone: the host table's own NOTIFY
// (migration 2026-12-02T0100-host-change-feed) on FLEET_CHANNEL. PostgreSQL delivers a listening
// session every notification committed while it listens, in commit order; what can be lost is
// only what was sent while no session listened, which the feed reports as a gap.
import type { DatabaseSession } from '../store/database.js';

/** The channel the host table's trigger notifies on. */
export const FLEET_CHANNEL = 'cphone_fleet';

export interface FleetFeed {
  /**
   * Listens: `notice` gets each change notice ('u <change_seq> <host id>' or 'd <seq> <host id>')
   * committed from now on, in commit order; `gap` is called when notices may have been missed (the
   * listening session was lost and replaced). Resolves once listening.
   */
  subscribe(notice: (payload: string) => void, gap: () => void): Promise<void>;
  /** Resolves once every notice committed before the call has been delivered; rejects if it cannot tell. */
  barrier(): Promise<void>;
  close(): Promise<void>;
}

/** What the feed needs of the cluster (cluster/cluster.ts), whose session it shares. */
export interface ClusterChannels {
  listen(channel: string, handler: (payload: string) => void): Promise<void>;
  barrier(channel: string): Promise<void>;
  onResync(handler: () => void): void;
}

/** The feed on the cluster's session: it reconnects with it, and the cluster's resync is the gap. */
export function clusterFleetFeed(cluster: ClusterChannels): FleetFeed {
  return {
    async subscribe(notice, gap) {
      cluster.onResync(gap);
      await cluster.listen(FLEET_CHANNEL, notice);
    },
    barrier: () => cluster.barrier(FLEET_CHANNEL),
    close: async () => {},
  };
}

/**
 * A feed on a session of its own, for a planner without a cluster (tests): it does not reconnect;
 * once its session is lost it reports a gap, and every barrier after that fails.
 */
export function sessionFleetFeed(open: () => Promise<DatabaseSession>): FleetFeed {
  let session: DatabaseSession | undefined;
  let lost: Error | undefined;
  return {
    async subscribe(notice, gap) {
      session = await open();
      session.onLost((error) => {
        lost = error;
        gap();
      });
      await session.listen(FLEET_CHANNEL, notice);
    },
    async barrier() {
      if (!session || lost) throw lost ?? new Error('the fleet feed is not listening');
      await session.barrier(FLEET_CHANNEL);
    },
    async close() {
      await session?.close();
      session = undefined;
    },
  };
}
