// Frozen in time: never edit a migration that has shipped; add a new one.
// The host table announces its own changes to what the scheduler reads: every insert, delete and
// update of a scheduling column takes a number from host_change_seq into the row's change_seq and
// sends a NOTIFY on cphone_fleet, delivered to every listener once (and only if) the transaction
// commits, in commit order. Payloads: 'u <change_seq> <host id>' for a row inserted or changed,
// 'd <seq> <host id>' for one deleted. A replica's fleet view re-reads the rows it has not seen at
// that number, so placements of other replicas, agent reports and operators' edits reach it as
// deltas, whoever wrote them. Heartbeats that change none of these columns send nothing.
import { type Kysely, sql } from 'kysely';

const WATCHED = [
  'name',
  'arch',
  'labels',
  'connection',
  'gateway_replica',
  'cordoned',
  'drain_state',
  'capacity_vcpu_millicores',
  'capacity_memory_mib',
  'capacity_storage_gib',
  'capacity_devices',
  'overcommit_cpu',
  'overcommit_memory',
  'allocated_vcpu_millicores',
  'allocated_memory_mib',
  'allocated_storage_gib',
  'allocated_devices',
];

// biome-ignore lint/suspicious/noExplicitAny: migrations are typed against no particular schema.
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .alterTable('host')
    .addColumn('change_seq', 'bigint', (c) => c.notNull().defaultTo(0))
    .execute();
  await sql`create sequence host_change_seq`.execute(db);
  await sql`
    create function host_fleet_change() returns trigger language plpgsql as $$
    begin
      if tg_op = 'DELETE' then
        perform pg_notify('cphone_fleet', 'd ' || nextval('host_change_seq') || ' ' || old.id);
        return old;
      end if;
      new.change_seq := nextval('host_change_seq');
      perform pg_notify('cphone_fleet', 'u ' || new.change_seq || ' ' || new.id);
      return new;
    end $$`.execute(db);
  const old = sql.raw(WATCHED.map((c) => `old.${c}`).join(', '));
  const now = sql.raw(WATCHED.map((c) => `new.${c}`).join(', '));
  await sql`create trigger host_fleet_insert before insert on host
    for each row execute function host_fleet_change()`.execute(db);
  await sql`create trigger host_fleet_update before update on host
    for each row when ((${old}) is distinct from (${now}))
    execute function host_fleet_change()`.execute(db);
  await sql`create trigger host_fleet_delete after delete on host
    for each row execute function host_fleet_change()`.execute(db);
}

// biome-ignore lint/suspicious/noExplicitAny: migrations are typed against no particular schema.
export async function down(db: Kysely<any>): Promise<void> {
  await sql`drop trigger host_fleet_delete on host`.execute(db);
  await sql`drop trigger host_fleet_update on host`.execute(db);
  await sql`drop trigger host_fleet_insert on host`.execute(db);
  await sql`drop function host_fleet_change()`.execute(db);
  await sql`drop sequence host_change_seq`.execute(db);
  await db.schema.alterTable('host').dropColumn('change_seq').execute();
}
