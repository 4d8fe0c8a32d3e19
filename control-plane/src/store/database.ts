import { randomBytes } from 'node:crypto';
import { mkdir } from 'node:fs/promises';
import { dirname } from 'node:path';
import { PGlite } from '@electric-sql/pglite';
import { Kysely, PostgresDialect } from 'kysely';
import pg from 'pg';
import { PGliteDialect } from './pglite-dialect.js';

export type DatabaseKind = 'postgres' | 'pglite';

export interface OpenDatabaseOptions {
  /** A postgres:// URL; when absent the embedded PGlite is used. */
  url?: string | undefined;
  /** Folder for PGlite's files; in-memory when absent. */
  pgliteDir?: string | undefined;
  /** Pool size for PostgreSQL (default 10). */
  poolSize?: number | undefined;
  /** Told how long each checkout from the PostgreSQL pool waited for a connection, in seconds. */
  onPoolWait?: ((seconds: number) => void) | undefined;
  /**
   * Told when a pooled connection fails outside a query (the server restarted, was terminated or
   * failed over). The pool drops that connection and opens a new one on the next checkout.
   */
  onPoolError?: ((error: Error) => void) | undefined;
}

/** The PostgreSQL pool's connections right now. */
export interface PoolStats {
  /** Connections open (idle and checked out). */
  total: number;
  idle: number;
  /** Checkouts waiting for a connection. */
  waiting: number;
  /** Connections the pool may open. */
  max: number;
}

export interface OpenDatabase<DB> {
  db: Kysely<DB>;
  kind: DatabaseKind;
  /**
   * Opens a session of its own (outside the pool) for what lives as long as a connection does:
   * LISTEN and session-level advisory locks.
   */
  session(): Promise<DatabaseSession>;
  /** The pool's connections (PostgreSQL only: PGlite is one in-process session). */
  poolStats?: () => PoolStats;
  close(): Promise<void>;
}

/** One database session held open: notifications and session-level advisory locks. */
export interface DatabaseSession {
  /** Delivers every NOTIFY on `channel` (sent by any session, once committed) to `onPayload`. */
  listen(channel: string, onPayload: (payload: string) => void): Promise<void>;
  /**
   * Resolves once every NOTIFY on `channel` (a channel this session listens on) committed before
   * the call has been delivered to its listener: PostgreSQL delivers notifications in commit order,
   * so a marker sent now comes back after all of them. Rejects if the session ends first.
   */
  barrier(channel: string): Promise<void>;
  /** pg_try_advisory_lock: true when this session holds (or now took) the lock. */
  tryAdvisoryLock(key: number): Promise<boolean>;
  /** pg_advisory_unlock: lets go of a lock this session holds. */
  advisoryUnlock(key: number): Promise<void>;
  /** Called once when the session ends by itself (server restart, network); its locks are gone. */
  onLost(callback: (error: Error) => void): void;
  close(): Promise<void>;
}

// int8 (bigint, count(*)) and numeric arrive as strings from PostgreSQL. Every int8 the store keeps
// (sequences, byte counts, milliseconds) stays far below 2^53, so both drivers parse it to a number
// and the two dialects return the same shapes.
const INT8_OID = 20;
/** Starts the payload of a barrier's NOTIFY (never a payload of the project's channels). */
const BARRIER_MARKER = '~barrier:';
const parseInt8 = (value: string): number => Number(value);
pg.types.setTypeParser(INT8_OID, parseInt8);

// How many distinct statement texts get a name; past that, statements go unnamed (parsed each
// time). The API's statements are a few hundred shapes; texts that vary with the data (IN lists
// of varying length) are what the cap is for.
const MAX_NAMED_STATEMENTS = 500;
const KEEPALIVE_DELAY_MS = 10_000;
// SQLSTATE feature_not_supported: "cached plan must not change result type" after a migration
// changed a table under a prepared `select *`.
const PLAN_CHANGED = '0A000';

/**
 * Names each parameterized statement by its text, so that PostgreSQL parses and plans it once per
 * connection and after that only binds and executes it (node-postgres keeps the names it prepared
 * per connection). On the API's short queries that is about a third less CPU in PostgreSQL and in
 * the driver. kysely sends every query as (text, values), so the pool's clients are wrapped where
 * they are made; a client whose prepared plan a migration invalidated goes back to unnamed
 * statements for good, and the statement that hit it is sent again unnamed.
 */
class StatementNames {
  readonly #names = new Map<string, string>();

  #nameOf(text: string): string | undefined {
    let name = this.#names.get(text);
    if (name === undefined && this.#names.size < MAX_NAMED_STATEMENTS) {
      name = `cphone_${this.#names.size}`;
      this.#names.set(text, name);
    }
    return name;
  }

  prepareOn(client: pg.PoolClient): void {
    const query = client.query.bind(client) as (...args: unknown[]) => Promise<pg.QueryResult>;
    let named = true;
    (client as { query: unknown }).query = (...args: unknown[]) => {
      const [text, values] = args;
      const name =
        named && args.length === 2 && typeof text === 'string' && Array.isArray(values) && values.length > 0
          ? this.#nameOf(text)
          : undefined;
      if (name === undefined) return query(...args);
      return query({ name, text, values }).catch((error: unknown) => {
        if ((error as { code?: string }).code !== PLAN_CHANGED) throw error;
        named = false;
        return query(text, values);
      });
    };
  }
}

/** Opens PostgreSQL (when a URL is given) or the embedded PGlite. */
export async function openDatabase<DB>(options: OpenDatabaseOptions = {}): Promise<OpenDatabase<DB>> {
  if (options.url) {
    // TCP keepalive from 10 s idle: a connection to a server that vanished without a reset (a node
    // lost, a failover behind a Service) is found dead in seconds instead of the kernel's 2 hours.
    const pool = new pg.Pool({
      connectionString: options.url,
      max: options.poolSize ?? 10,
      keepAlive: true,
      keepAliveInitialDelayMillis: KEEPALIVE_DELAY_MS,
    });
    const names = new StatementNames();
    // A connection may fail idle in the pool or checked out between two queries (inside a
    // transaction); either way node-postgres emits 'error' on its client, and an 'error' nobody
    // listens to ends the process. The pool drops a failed idle connection itself and one checked
    // out when it is released; the query in flight, if any, is rejected on its own.
    const onPoolError = options.onPoolError;
    pool.on('connect', (client) => {
      client.on('error', (error) => onPoolError?.(error));
      names.prepareOn(client);
    });
    // Idle failures reach the pool's listener too: already reported by the client's.
    pool.on('error', () => undefined);
    const onWait = options.onPoolWait;
    // Every query Kysely runs checks a connection out through here, so the wait is timed once.
    const timed = onWait
      ? {
          connect: async () => {
            const started = performance.now();
            const client = await pool.connect();
            onWait((performance.now() - started) / 1000);
            return client;
          },
          end: () => pool.end(),
        }
      : pool;
    const db = new Kysely<DB>({ dialect: new PostgresDialect({ pool: timed }) });
    const url = options.url;
    return {
      db,
      kind: 'postgres',
      session: () => openPgSession(url),
      poolStats: () => ({
        total: pool.totalCount,
        idle: pool.idleCount,
        waiting: pool.waitingCount,
        max: pool.options.max,
      }),
      close: () => db.destroy(),
    };
  }
  // PGlite makes its own folder but not the folders above it.
  if (options.pgliteDir) await mkdir(dirname(options.pgliteDir), { recursive: true, mode: 0o700 });
  const pglite = new PGlite(options.pgliteDir, { parsers: { [INT8_OID]: parseInt8 } });
  await pglite.waitReady;
  const db = new Kysely<DB>({ dialect: new PGliteDialect(pglite) });
  return { db, kind: 'pglite', session: async () => openPgliteSession(pglite), close: () => db.destroy() };
}

async function openPgSession(url: string): Promise<DatabaseSession> {
  const client = new pg.Client({
    connectionString: url,
    keepAlive: true,
    keepAliveInitialDelayMillis: KEEPALIVE_DELAY_MS,
  });
  const handlers = new Map<string, (payload: string) => void>();
  let lost: ((error: Error) => void) | undefined;
  let ended = false;
  const end = (error: Error) => {
    if (ended) return;
    ended = true;
    for (const waiting of barriers.values()) waiting.reject(error);
    barriers.clear();
    lost?.(error);
  };
  // Barrier markers reach every listener of the channel; each session answers only its own.
  const barriers = new Map<string, { resolve: () => void; reject: (error: Error) => void }>();
  const marker = `${BARRIER_MARKER}${randomBytes(6).toString('hex')}:`;
  let nextBarrier = 0;
  client.on('notification', (n) => {
    const payload = n.payload ?? '';
    if (payload.startsWith(BARRIER_MARKER)) {
      barriers.get(payload)?.resolve();
      barriers.delete(payload);
      return;
    }
    handlers.get(n.channel)?.(payload);
  });
  client.on('error', (error) => end(error));
  client.on('end', () => end(new Error('database session ended')));
  await client.connect();
  return {
    async listen(channel, onPayload) {
      handlers.set(channel, onPayload);
      await client.query(`listen ${client.escapeIdentifier(channel)}`);
    },
    async barrier(channel) {
      if (ended) throw new Error('database session ended');
      const token = `${marker}${nextBarrier++}`;
      const arrived = new Promise<void>((resolve, reject) => barriers.set(token, { resolve, reject }));
      try {
        await client.query('select pg_notify($1, $2)', [channel, token]);
      } catch (error) {
        barriers.delete(token);
        throw error;
      }
      await arrived;
    },
    async tryAdvisoryLock(key) {
      const { rows } = await client.query<{ locked: boolean }>('select pg_try_advisory_lock($1) as locked', [
        key,
      ]);
      return rows[0]?.locked === true;
    },
    async advisoryUnlock(key) {
      await client.query('select pg_advisory_unlock($1)', [key]);
    },
    onLost(callback) {
      lost = callback;
    },
    async close() {
      ended = true;
      await client.end().catch(() => undefined);
    },
  };
}

// PGlite is one session shared by every user of the instance, so its advisory locks are re-entrant
// for all of them. Sessions opened on one instance (several control planes in one process, as tests
// run them) get a lock table of their own per instance, with PostgreSQL's semantics.
const pgliteLocks = new WeakMap<PGlite, Map<number, object>>();

function openPgliteSession(pglite: PGlite): DatabaseSession {
  const owner = {};
  const unlisten: (() => Promise<void>)[] = [];
  let locks = pgliteLocks.get(pglite);
  if (!locks) {
    locks = new Map();
    pgliteLocks.set(pglite, locks);
  }
  const held = locks;
  return {
    async listen(channel, onPayload) {
      unlisten.push(await pglite.listen(channel, onPayload));
    },
    async barrier() {
      // PGlite runs a transaction's listeners before the statement that committed it returns, so
      // whatever committed before this call has been delivered already.
    },
    async tryAdvisoryLock(key) {
      const holder = held.get(key);
      if (holder === undefined) held.set(key, owner);
      return (holder ?? owner) === owner;
    },
    async advisoryUnlock(key) {
      if (held.get(key) === owner) held.delete(key);
    },
    onLost() {
      // An in-process session does not end by itself.
    },
    async close() {
      for (const [key, holder] of held) if (holder === owner) held.delete(key);
      if (!pglite.closed) for (const stop of unlisten) await stop();
    },
  };
}
