// Queries on `adb_tunnel`: each grant to carry ADB to a device through its host agent.
import type { Insertable, Kysely, Selectable, Transaction } from 'kysely';
import type { AdbTunnelTable, Database } from './schema.js';

type Db = Kysely<Database> | Transaction<Database>;

export type AdbTunnelRow = Selectable<AdbTunnelTable>;

export function insertAdbTunnel(db: Db, row: Insertable<AdbTunnelTable>): Promise<AdbTunnelRow> {
  return db.insertInto('adb_tunnel').values(row).returningAll().executeTakeFirstOrThrow();
}

/** A tunnel issued for `hostId`, or undefined: a host speaks for its own tunnels only. */
export function findHostAdbTunnel(db: Db, hostId: string, tunnelId: string) {
  return db
    .selectFrom('adb_tunnel')
    .selectAll()
    .where('id', '=', tunnelId)
    .where('host_id', '=', hostId)
    .executeTakeFirst();
}
