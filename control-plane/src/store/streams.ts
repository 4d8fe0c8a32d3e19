// Queries on `stream_session`: each grant to watch a device, and what became of it.
import { type Insertable, type Kysely, type Selectable, sql, type Transaction } from 'kysely';
import type { Database, StreamSessionTable } from './schema.js';

type Db = Kysely<Database> | Transaction<Database>;

export type StreamSessionRow = Selectable<StreamSessionTable>;

export async function insertStreamSession(
  db: Db,
  row: Insertable<StreamSessionTable>,
): Promise<StreamSessionRow> {
  return db.insertInto('stream_session').values(row).returningAll().executeTakeFirstOrThrow();
}

/** A session of one of `tenants`, or undefined (another tenant's session is never revealed). */
export function findStreamSession(db: Db, tenants: readonly string[], sessionId: string) {
  return db
    .selectFrom('stream_session')
    .selectAll()
    .where('id', '=', sessionId)
    .where('tenant_id', 'in', tenants)
    .executeTakeFirst();
}

/**
 * Why the control plane itself ends sessions: each bars the session's token for good (the agent is
 * told, and told again after it reconnects). Any other end is the viewer's side (it left, its
 * connection dropped, its agent restarted): the token may join again while it is in force.
 */
export const BARRING_END_REASONS = [
  'REVOKED',
  'TENANT_SUSPENDED',
  'DEVICE_STOPPED',
  'DEVICE_DELETED',
] as const;
export type BarringEndReason = (typeof BARRING_END_REASONS)[number];

/** Ends sessions not ended yet; returns them (with their host, to tell its agent). */
export function endStreamSessions(
  db: Db,
  where: { sessionId?: string; deviceId?: string; tenantIds?: readonly string[] },
  reason: BarringEndReason,
  now: Date,
): Promise<StreamSessionRow[]> {
  let query = db
    .updateTable('stream_session')
    .set({ state: 'ended', end_time: now, end_reason: reason, update_time: now })
    .where('state', '!=', 'ended');
  if (where.sessionId !== undefined) query = query.where('id', '=', where.sessionId);
  if (where.deviceId !== undefined) query = query.where('device_id', '=', where.deviceId);
  if (where.tenantIds !== undefined) {
    if (where.tenantIds.length === 0) return Promise.resolve([]);
    query = query.where('tenant_id', 'in', where.tenantIds);
  }
  return query.returningAll().execute();
}

/** A viewer joined: active, started at its first join. */
export async function markJoined(db: Db, sessionId: string, at: Date): Promise<StreamSessionRow | undefined> {
  return db
    .updateTable('stream_session')
    .set({
      state: sql`case when state = 'ended' and end_reason in (${sql.join(BARRING_END_REASONS)}) then state else 'active' end`,
      start_time: sql`coalesce(start_time, ${at})`,
      end_time: sql`case when state = 'ended' and end_reason in (${sql.join(BARRING_END_REASONS)}) then end_time else null end`,
      end_reason: sql`case when state = 'ended' and end_reason in (${sql.join(BARRING_END_REASONS)}) then end_reason else '' end`,
      update_time: at,
    })
    .where('id', '=', sessionId)
    .returningAll()
    .executeTakeFirst();
}

/** A viewer left or was cut: its connected time is added; a revocation's reason is kept. */
export async function markLeft(
  db: Db,
  sessionId: string,
  change: { at: Date; viewerSeconds: number; reason: string; stats: Record<string, number> },
): Promise<StreamSessionRow | undefined> {
  return db
    .updateTable('stream_session')
    .set({
      state: 'ended',
      end_time: sql`coalesce(end_time, ${change.at})`,
      end_reason: sql`case when end_reason = '' then ${change.reason} else end_reason end`,
      viewer_seconds: sql`viewer_seconds + ${Math.max(0, Math.round(change.viewerSeconds))}`,
      stats: JSON.stringify(change.stats),
      update_time: change.at,
    })
    .where('id', '=', sessionId)
    .returningAll()
    .executeTakeFirst();
}

export async function recordStats(db: Db, sessionId: string, stats: Record<string, number>, at: Date) {
  await db
    .updateTable('stream_session')
    .set({ stats: JSON.stringify(stats), update_time: at })
    .where('id', '=', sessionId)
    .execute();
}

/** Sessions of a host that the control plane ended (barred) and whose tokens are still in force. */
export function revokedInForce(db: Db, hostId: string, now: Date) {
  return db
    .selectFrom('stream_session')
    .select(['id', 'device_id', 'end_reason'])
    .where('host_id', '=', hostId)
    .where('state', '=', 'ended')
    .where('end_reason', 'in', BARRING_END_REASONS)
    .where('expire_time', '>', now)
    .execute();
}
