// The replicas of one control plane find each other through their database: messages ride
// PostgreSQL NOTIFY on one channel (payloads too large for NOTIFY's 8000 bytes go through the
// gateway_relay table and the notification carries the row id), and the periodic jobs run on the
// one replica holding a session-level advisory lock. Other channels can be heard on the same session
// (listen(): the host table's change feed, which the fleet view follows), with a barrier that
// tells when everything committed so far has arrived. All live on a session of their own; when it
// ends the replica steps down, reconnects with backoff and tells its listeners to resync, because
// notifications sent meanwhile are lost.
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import type { Kysely } from 'kysely';
import type { Clock } from '../clock.js';
import type { Logger } from '../logger.js';
import type { Metrics } from '../metrics.js';
import type { DatabaseSession } from '../store/database.js';
import type { Database } from '../store/schema.js';

/** What a replica says to the others; `to` names one replica, else every replica hears it. */
export interface Envelope<M> {
  from: string;
  to?: string | undefined;
  message: M;
}

export interface ClusterOptions {
  db: Kysely<Database>;
  openSession: () => Promise<DatabaseSession>;
  replicaId: string;
  logger: Logger;
  metrics: Metrics;
  clock: Clock;
  /** How often a follower tries to take the leadership (default 5000 ms). */
  leaderPollMs?: number | undefined;
  /** Relay rows older than this are swept by the leader (default 5 min). */
  relayTtlMs?: number | undefined;
}

/** A fresh name for this process among the replicas: host-pid-random. */
export const newReplicaId = (): string => `${hostname()}-${process.pid}-${randomBytes(3).toString('hex')}`;

export const CLUSTER_CHANNEL = 'cphone_cluster';
// Each replica holds a session-level advisory lock of its own while its session lives, so any other
// replica can tell whether it is alive (the lock is held) or gone (free). Keys above 2^40 keep clear
// of the leadership's.
const ALIVE_LOCK_BASE = 2 ** 40;

function aliveKey(replicaId: string): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < replicaId.length; i++)
    hash = Math.imul(hash ^ replicaId.charCodeAt(i), 0x01000193) >>> 0;
  return ALIVE_LOCK_BASE + hash;
}
// pg_advisory_lock key of the leadership: 'cphone' in ASCII, fits an int4.
export const LEADER_LOCK_KEY = 0x637068;
// NOTIFY payloads are limited to 8000 bytes; leave room for the envelope's framing.
const MAX_INLINE_BYTES = 7500;

interface Wire {
  from: string;
  to?: string | undefined;
  /** The message itself, or the id of the relay row holding it. */
  m?: unknown;
  ref?: string;
  /** Set when the sender waits to hear its own message back (publish's `heard`). */
  echo?: number | undefined;
}

export class Cluster<M> {
  #session: DatabaseSession | undefined;
  #leaderSince: Date | undefined;
  #closed = false;
  #timer: NodeJS.Timeout | undefined;
  #connecting: Promise<void> | undefined;
  #backoffMs = 0;
  #handlers: ((envelope: Envelope<M>) => void)[] = [];
  #resync: (() => void)[] = [];
  #echoes = 0;
  /** Own messages published with `heard`, by echo number: resolves the publisher's wait. */
  readonly #awaitingEcho = new Map<number, () => void>();
  /** Other channels heard on the session (see listen()), and those the current session listens on. */
  #channels = new Map<string, (payload: string) => void>();
  #listening = new Set<string>();
  readonly #log: Logger;

  constructor(private readonly options: ClusterOptions) {
    this.#log = options.logger.child({ module: 'cluster', replicaId: options.replicaId });
  }

  get replicaId(): string {
    return this.options.replicaId;
  }

  /** True while this replica holds the leadership (runs the periodic jobs). */
  isLeader(): boolean {
    return this.#leaderSince !== undefined;
  }

  /** When this replica last became leader; undefined while it is not. */
  get leaderSince(): Date | undefined {
    return this.#leaderSince;
  }

  onMessage(handler: (envelope: Envelope<M>) => void): void {
    this.#handlers.push(handler);
  }

  /** Called after the session to the database was lost and is back: notifications may be missed. */
  onResync(handler: () => void): void {
    this.#resync.push(handler);
  }

  /**
   * Hears `channel` too, on this replica's session (again after every reconnect; onResync tells
   * what was missed meanwhile). Resolves once the current session listens, if there is one.
   */
  async listen(channel: string, handler: (payload: string) => void): Promise<void> {
    this.#channels.set(channel, handler);
    if (this.#session) await this.#listenChannels(this.#session);
  }

  /**
   * Resolves once every notification on `channel` (one passed to listen()) committed before the
   * call has been handled here; rejects while this replica has no session.
   */
  barrier(channel: string): Promise<void> {
    const session = this.#session;
    if (!session) return Promise.reject(new Error('no database session: reconnecting'));
    return session.barrier(channel);
  }

  async start(): Promise<void> {
    await this.#connect();
    this.#timer = setInterval(() => void this.#tick(), this.options.leaderPollMs ?? 5000);
    this.#timer.unref();
  }

  /**
   * Sends `message` to replica `to`, or to every other replica. Resolves once the NOTIFY is sent,
   * or with `heard`, once this replica's own listening session has received it back (at most
   * `heard` ms): PostgreSQL hands a NOTIFY to every listening session at the same commit, so by
   * then the others have it in hand too, bar their own scheduling.
   */
  async publish(to: string | undefined, message: M, options: { heard?: number } = {}): Promise<void> {
    const { db } = this.options;
    const from = this.options.replicaId;
    const echo = options.heard !== undefined && this.#session ? ++this.#echoes : undefined;
    let payload = JSON.stringify({ from, to, m: message, echo } satisfies Wire);
    if (Buffer.byteLength(payload) > MAX_INLINE_BYTES) {
      const id = `relay_${randomBytes(12).toString('hex')}`;
      await db.insertInto('gateway_relay').values({ id, payload }).execute();
      payload = JSON.stringify({ from, to, ref: id, echo } satisfies Wire);
      this.options.metrics.clusterMessages.inc({ direction: 'out', via: 'relay' });
    } else {
      this.options.metrics.clusterMessages.inc({ direction: 'out', via: 'notify' });
    }
    if (echo === undefined) {
      await db
        .selectNoFrom((eb) => eb.fn('pg_notify', [eb.val(CLUSTER_CHANNEL), eb.val(payload)]).as('sent'))
        .execute();
      return;
    }
    let timer: NodeJS.Timeout | undefined;
    const heard = new Promise<void>((resolve) => {
      this.#awaitingEcho.set(echo, resolve);
      timer = setTimeout(() => {
        this.#log.warn({ waitedMs: options.heard }, 'own cluster message not heard back in time');
        resolve();
      }, options.heard);
    });
    try {
      await db
        .selectNoFrom((eb) => eb.fn('pg_notify', [eb.val(CLUSTER_CHANNEL), eb.val(payload)]).as('sent'))
        .execute();
      await heard;
    } finally {
      clearTimeout(timer);
      this.#awaitingEcho.delete(echo);
    }
  }

  /**
   * Whether the replica named holds a live database session. Asked without a session of its own,
   * this replica cannot tell and answers true (nothing is swept on a guess).
   */
  async isAlive(replicaId: string): Promise<boolean> {
    if (replicaId === this.options.replicaId) return true;
    const session = this.#session;
    if (!session) return true;
    const key = aliveKey(replicaId);
    if (!(await session.tryAdvisoryLock(key))) return true;
    await session.advisoryUnlock(key);
    return false;
  }

  /** One leader pass: sweep relay rows nobody read (their reader went away). */
  async sweep(): Promise<number> {
    const cutoff = new Date(this.options.clock.now().getTime() - (this.options.relayTtlMs ?? 300_000));
    const result = await this.options.db
      .deleteFrom('gateway_relay')
      .where('create_time', '<', cutoff)
      .executeTakeFirst();
    return Number(result.numDeletedRows);
  }

  async close(): Promise<void> {
    this.#closed = true;
    clearInterval(this.#timer);
    await this.#connecting?.catch(() => undefined);
    this.#stepDown();
    await this.#session?.close();
    this.#session = undefined;
  }

  async #tick(): Promise<void> {
    if (this.#closed) return;
    if (!this.#session) {
      if (!this.#connecting) {
        this.#connecting = this.#connect()
          .then(() => {
            for (const handler of this.#resync) handler();
          })
          .catch((err: unknown) => this.#log.warn({ err }, 'cluster session: reconnect failed'))
          .finally(() => (this.#connecting = undefined));
      }
      return;
    }
    if (!this.isLeader()) await this.#tryLead(this.#session);
    else await this.sweep().catch((err: unknown) => this.#log.warn({ err }, 'relay sweep failed'));
  }

  async #connect(): Promise<void> {
    if (this.#backoffMs > 0) await new Promise((r) => setTimeout(r, this.#backoffMs));
    let session: DatabaseSession;
    try {
      session = await this.options.openSession();
    } catch (error) {
      this.#backoffMs = Math.min(30_000, Math.max(500, this.#backoffMs * 2));
      throw error;
    }
    this.#backoffMs = 0;
    session.onLost((err) => {
      if (this.#session !== session) return;
      this.#session = undefined;
      this.#stepDown();
      this.#backoffMs = 500;
      this.#log.warn({ err }, 'cluster session lost: stepped down, reconnecting');
    });
    await session.listen(CLUSTER_CHANNEL, (payload) => void this.#receive(payload));
    await session.tryAdvisoryLock(aliveKey(this.options.replicaId));
    if (this.#closed) {
      await session.close();
      return;
    }
    this.#session = session;
    this.#listening = new Set();
    await this.#listenChannels(session);
    await this.#tryLead(session);
  }

  async #listenChannels(session: DatabaseSession): Promise<void> {
    for (const [channel, handler] of this.#channels) {
      if (this.#listening.has(channel)) continue;
      this.#listening.add(channel);
      await session.listen(channel, handler);
    }
  }

  async #tryLead(session: DatabaseSession): Promise<void> {
    try {
      if (!(await session.tryAdvisoryLock(LEADER_LOCK_KEY))) return;
    } catch (err) {
      this.#log.warn({ err }, 'leadership check failed');
      return;
    }
    if (this.#session !== session || this.#closed || this.#leaderSince) return;
    this.#leaderSince = this.options.clock.now();
    this.options.metrics.clusterLeader.set(1);
    this.#log.info('this replica leads the periodic jobs');
  }

  #stepDown(): void {
    if (!this.#leaderSince) return;
    this.#leaderSince = undefined;
    this.options.metrics.clusterLeader.set(0);
    this.#log.info('this replica no longer leads');
  }

  async #receive(payload: string): Promise<void> {
    let wire: Wire;
    try {
      wire = JSON.parse(payload) as Wire;
    } catch (err) {
      this.#log.warn({ err }, 'cluster message that is not JSON ignored');
      return;
    }
    const me = this.options.replicaId;
    if (wire.from === me && wire.echo !== undefined) this.#awaitingEcho.get(wire.echo)?.();
    if (wire.from === me || (wire.to !== undefined && wire.to !== me)) return;
    let body = wire.m;
    if (wire.ref !== undefined) {
      // A message for one replica is read once; one for all stays until the leader sweeps it.
      const ref = wire.ref;
      const read =
        wire.to === undefined
          ? this.options.db
              .selectFrom('gateway_relay')
              .select('payload')
              .where('id', '=', ref)
              .executeTakeFirst()
          : this.options.db
              .deleteFrom('gateway_relay')
              .where('id', '=', ref)
              .returning('payload')
              .executeTakeFirst();
      const row = await read.catch((err: unknown) => {
        this.#log.warn({ err, ref }, 'relay row unreadable');
        return undefined;
      });
      if (!row) return;
      body = (JSON.parse(row.payload) as Wire).m;
    }
    this.options.metrics.clusterMessages.inc({ direction: 'in', via: wire.ref ? 'relay' : 'notify' });
    const envelope: Envelope<M> = { from: wire.from, to: wire.to, message: body as M };
    for (const handler of this.#handlers) {
      try {
        handler(envelope);
      } catch (err) {
        this.#log.error({ err }, 'cluster message handler failed');
      }
    }
  }
}
