// Heartbeats are the most frequent write of the fleet (10,000 hosts at 10 s is 1,000 a second), so
// they are coalesced in memory and written in one statement per flush rather than one per message.
import type { Kysely } from 'kysely';
import type { Logger } from '../logger.js';
import { type HeartbeatRow, writeHeartbeats } from '../store/hosts.js';
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
    const batch: HeartbeatRow[] = [...this.#pending].map(([hostId, hb]) => ({ hostId, ...hb }));
    this.#pending.clear();
    for (let i = 0; i < batch.length; i += CHUNK) {
      const rows = batch.slice(i, i + CHUNK);
      try {
        await writeHeartbeats(this.db, rows);
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
