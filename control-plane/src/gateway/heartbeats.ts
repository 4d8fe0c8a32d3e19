// Heartbeats are the most frequent write of the fleet (10,000 hosts at 10 s is 1,000 a second), so
// they are coalesced in memory and written in one statement per flush rather than one per message.
import { type Kysely, sql } from 'kysely';
import type { Logger } from '../logger.js';
import type { Database } from '../store/schema.js';

export interface HeartbeatRecord {
  time: Date;
  /** HostLoad as protobuf JSON with numbers (fromJson(HostLoadSchema, row.load) reads it back). */
  load: Record<string, number>;
}

const CHUNK = 2000;

export class HeartbeatWriter {
  #pending = new Map<string, HeartbeatRecord>();
  #timer: NodeJS.Timeout | undefined;
  #flushing: Promise<void> = Promise.resolve();

  constructor(
    private readonly db: Kysely<Database>,
    private readonly logger: Logger,
    intervalMs: number,
  ) {
    this.#timer = setInterval(() => void this.flush(), intervalMs);
    this.#timer.unref();
  }

  /** Records a heartbeat; the latest per host wins. */
  record(hostId: string, heartbeat: HeartbeatRecord): void {
    this.#pending.set(hostId, heartbeat);
  }

  /** Writes what is pending (one statement per chunk of hosts); concurrent calls queue. */
  flush(): Promise<void> {
    this.#flushing = this.#flushing.then(() => this.#write());
    return this.#flushing;
  }

  async #write(): Promise<void> {
    if (this.#pending.size === 0) return;
    const batch = [...this.#pending];
    this.#pending.clear();
    for (let i = 0; i < batch.length; i += CHUNK) {
      const rows = batch
        .slice(i, i + CHUNK)
        .map(
          ([id, hb]) =>
            sql`(${id}::text, ${hb.time.toISOString()}::timestamptz, ${JSON.stringify(hb.load)}::jsonb)`,
        );
      try {
        // A heartbeat proves the host reachable, so it also heals a host marked unreachable while
        // its stream stayed up (e.g. a stalled flush on a busy replica).
        await sql`
          update host set
            last_heartbeat_time = greatest(host.last_heartbeat_time, v.t),
            load = v.load,
            connection = 'ready',
            unreachable_since = null,
            update_time = v.t
          from (values ${sql.join(rows)}) as v(id, t, load)
          where host.id = v.id`.execute(this.db);
      } catch (err) {
        this.logger.error({ err, hosts: rows.length }, 'heartbeat flush failed');
      }
    }
  }

  async close(): Promise<void> {
    clearInterval(this.#timer);
    this.#timer = undefined;
    await this.flush();
  }
}
