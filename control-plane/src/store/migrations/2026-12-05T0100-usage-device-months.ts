// Frozen in time: never edit a migration that has shipped; add a new one.
//
// Distinct devices per range, cheaply. A usage row's device_count is the number of distinct
// devices with usage in its range; a distinct count over many rollup buckets cannot be summed
// from per-bucket counts, so tenant-level queries had to read every device rollup row of the
// range (hundreds of thousands for a month of a 10,000-phone reseller). usage_device_month keeps
// one row per device and UTC month: bit i of `slots` is set when the device has a sample starting
// in the month's i-th 15-minute slot (31 days x 96 slots = 2976 bits; shorter months leave the
// tail clear). Whether a device counts in a range is then one AND with the range's mask: a month
// for 10,000 devices reads some 20,000 rows. The intake ORs the slots in, in the transaction that
// writes the rollups; the existing 15-minute device rollups fill it here.
import { type Kysely, sql } from 'kysely';

// biome-ignore lint/suspicious/noExplicitAny: migrations are typed against no particular schema.
export async function up(db: Kysely<any>): Promise<void> {
  await sql`
    create table usage_device_month (
      tenant_id text not null,
      month timestamptz not null,
      device_id text not null,
      slots bit(2976) not null,
      primary key (tenant_id, month, device_id)
    )`.execute(db);
  await sql`
    insert into usage_device_month (tenant_id, month, device_id, slots)
    select tenant_id, month, device_id,
      bit_or(set_bit(repeat('0', 2976)::bit(2976), floor(extract(epoch from (bucket_start - month)) / 900)::int, 1))
    from (
      select tenant_id, device_id, bucket_start,
        date_trunc('month', bucket_start at time zone 'UTC') at time zone 'UTC' as month
      from usage_rollup_device where grain = 15
    ) r
    group by 1, 2, 3`.execute(db);
}

// biome-ignore lint/suspicious/noExplicitAny: see up().
export async function down(db: Kysely<any>): Promise<void> {
  await sql`drop table usage_device_month`.execute(db);
}
