// Closing one month's statements for many tenants, timed through the real path (closeMonth, what
// the leader's statement closer runs): rating every tenant that has a price book, then one
// immutable statement each. Seeds its own tenants (ids "bcm_..."), price books and usage into the
// given migrated database: `tenants` customers under 10 resellers; every customer a retail book
// from the month's start and every fourth a second one from the 16th (a mid-month change); every
// reseller a wholesale book; `devicesPerTenant` devices, one in four of class "gpu", each with one
// sample every `sampleEveryMinutes` minutes (default 60: as many rows as hourly rollups would hold)
// for the whole month (80 % of them running), written by
// INSERT ... SELECT over generate_series on the server, and the rollups billing reads derived from
// them there.
import { closeMonth, ensureUsagePartitions, monthOf } from '@cphone/control-plane/testing';
import { type Kysely, sql } from 'kysely';

export interface CloseMonthOptions {
  /** Customers; default 1000. */
  tenants?: number;
  devicesPerTenant?: number;
  sampleEveryMinutes?: number;
  /** "YYYY-MM"; default the last month that is over. */
  month?: string;
  log?: (line: string) => void;
}

const RESELLERS = 10;

// biome-ignore lint/suspicious/noExplicitAny: the bench seeds tables of the control plane's schema directly.
export async function closeMonthBench(db: Kysely<any>, opts: CloseMonthOptions = {}) {
  const tenants = opts.tenants ?? 1000;
  const devicesPerTenant = opts.devicesPerTenant ?? 4;
  const every = opts.sampleEveryMinutes ?? 60;
  const log = opts.log ?? (() => {});
  const month = opts.month
    ? monthOf(new Date(`${opts.month}-01T00:00:00Z`))
    : monthOf(new Date(monthOf(new Date()).start.getTime() - 1));
  const mid = new Date(Date.UTC(month.start.getUTCFullYear(), month.start.getUTCMonth(), 16));
  const now = new Date();
  const seedStart = performance.now();

  await sql`insert into tenant (id, parent_id, kind, display_name, update_time)
    values ('platform', null, 'platform', 'platform', now()) on conflict (id) do nothing`.execute(db);
  const resellers = Array.from({ length: RESELLERS }, (_, i) => `bcm_r${i}`);
  const customers = Array.from({ length: tenants }, (_, i) => `bcm_c${i}`);
  const tenantRows = [
    ...resellers.map((id) => ({
      id,
      parent_id: 'platform',
      kind: 'reseller',
      display_name: id,
      update_time: now,
    })),
    ...customers.map((id, i) => ({
      id,
      parent_id: resellers[i % RESELLERS],
      kind: 'customer',
      display_name: id,
      update_time: now,
    })),
  ];
  await db.insertInto('tenant').values(tenantRows).execute();

  const price = (dimension: string, unitPrice: string, deviceClass = '', included = '0') => ({
    dimension,
    device_class: deviceClass,
    included_quantity: included,
    tiers: [{ up_to: '0', unit_price: unitPrice }],
  });
  const retail = (factor: number) => [
    {
      dimension: 'device_minutes',
      device_class: '',
      included_quantity: '1000',
      tiers: [
        { up_to: '20000', unit_price: (0.002 * factor).toFixed(4) },
        { up_to: '0', unit_price: (0.0015 * factor).toFixed(4) },
      ],
    },
    price('device_minutes', (0.01 * factor).toFixed(4), 'gpu'),
    price('stopped_device_minutes', '0.0002'),
    price('vcpu_minutes', '0.00012'),
    price('memory_gib_minutes', '0.00003'),
    price('storage_gib_minutes', '0.0000025', '', '100000'),
  ];
  const book = (id: string, tenantId: string, from: Date, prices: object[], minimum: string) => ({
    id,
    tenant_id: tenantId,
    currency: 'USD',
    effective_from: from,
    prices: JSON.stringify(prices),
    minimum_charge: minimum,
    display_name: 'bench',
    creator: 'bench',
  });
  const books = [
    ...resellers.map((id) =>
      book(`bcm_pb_${id}`, id, month.start, [price('device_minutes', '0.001')], '0.00'),
    ),
    ...customers.map((id) => book(`bcm_pb_${id}`, id, month.start, retail(1), '5.00')),
    ...customers
      .filter((_, i) => i % 4 === 0)
      .map((id) => book(`bcm_pb2_${id}`, id, mid, retail(1.25), '10.00')),
  ];
  for (let i = 0; i < books.length; i += 500)
    await db
      .insertInto('price_book')
      .values(books.slice(i, i + 500))
      .execute();

  await db
    .insertInto('image')
    .values({
      id: 'bcm_img',
      tenant_id: null,
      display_name: 'bench',
      image_ref: 'redroid/redroid:14.0.0-latest',
      android_version: '14',
      arches: JSON.stringify(['arm64']),
      required_labels: '{}',
      default_spec: '{}',
      min_vcpu_millicores: 1000,
      min_memory_mib: 1024,
      min_storage_gib: 4,
      update_time: now,
    })
    .onConflict((c) => c.column('id').doNothing())
    .execute();
  const devices = customers.flatMap((tenantId, t) =>
    Array.from({ length: devicesPerTenant }, (_, d) => ({
      id: `bcm_d${t}_${d}`,
      tenant_id: tenantId,
      display_name: `bcm_d${t}_${d}`,
      labels: JSON.stringify(d % 4 === 3 ? { class: 'gpu' } : {}),
      image_id: 'bcm_img',
      image_ref: 'redroid/redroid:14.0.0-latest',
      vcpu_millicores: 2000,
      memory_mib: 4096,
      storage_gib: 16,
      spec_revision: 1,
      desired_power: 'running',
      restart_policy: 'always',
      restart_generation: 0,
      state: 'running',
      state_reason: '',
      state_message: '',
      host_id: null,
      observed_spec_revision: 0,
      adb_endpoint: '',
      update_time: now,
      delete_time: null,
    })),
  );
  for (let i = 0; i < devices.length; i += 500)
    await db
      .insertInto('device')
      .values(devices.slice(i, i + 500))
      .execute();
  // One host per device, so (host, sequence) is each sample's minute.
  await ensureUsagePartitions(db, [month.start]);
  for (let i = 0; i < tenants; i += 100) {
    await sql`
      insert into usage_sample (host_id, sequence, device_id, tenant_id, start_time, end_time,
        vcpu_millicores, memory_mib, storage_gib, state)
      select 'bcm_h_' || d.id, (extract(epoch from g) / 60)::bigint, d.id, d.tenant_id, g,
        g + interval '1 minute', d.vcpu_millicores, d.memory_mib, d.storage_gib,
        case when ((extract(epoch from g) / 60)::bigint + abs(hashtext(d.id))) % 10 < 8
          then 'running' else 'stopped' end
      from device d
      cross join generate_series(${month.start}::timestamptz, ${month.end}::timestamptz - interval '1 minute',
        ${`${every} minutes`}::interval) g
      where d.tenant_id in (${sql.join(customers.slice(i, i + 100))})`.execute(db);
  }
  // Billing reads the rollups: derive them from these samples on the server, with the intake's
  // arithmetic (usage/rollups.ts), as the intake would have written them.
  const secs = sql`floor(extract(epoch from (end_time - start_time)))::int8`;
  const running = sql`(state in ('running', 'booting'))`;
  const sums = sql`
    sum(case when ${running} then ${secs} else 0 end), sum(case when ${running} then 0 else ${secs} end),
    sum(case when ${running} then ${secs} * vcpu_millicores else 0 end),
    sum(case when ${running} then ${secs} * memory_mib else 0 end), sum(${secs} * storage_gib)`;
  const mine = sql`host_id like 'bcm_h_%' and start_time >= ${month.start} and start_time < ${month.end}`;
  for (const grain of [15, 60, 1440]) {
    const bucket = sql`to_timestamp(floor(extract(epoch from start_time) / ${sql.lit(grain * 60)}) * ${sql.lit(grain * 60)})`;
    await sql`insert into usage_rollup_device (tenant_id, grain, bucket_start, device_id, host_id, running_s, stopped_s,
        vcpu_mcs, memory_mibs, storage_gibs)
      select tenant_id, ${sql.lit(grain)}, ${bucket}, device_id, host_id, ${sums}
      from usage_sample where ${mine} group by 1, 2, 3, 4, 5`.execute(db);
    await sql`insert into usage_rollup_tenant (tenant_id, grain, bucket_start, running_s, stopped_s,
        vcpu_mcs, memory_mibs, storage_gibs)
      select tenant_id, ${sql.lit(grain)}, ${bucket}, ${sums}
      from usage_sample where ${mine} group by 1, 2, 3`.execute(db);
  }
  await sql`insert into usage_device_month (tenant_id, month, device_id, slots)
    select tenant_id, ${month.start}::timestamptz, device_id,
      bit_or(set_bit(repeat('0', 2976)::bit(2976), floor(extract(epoch from (start_time - ${month.start}::timestamptz)) / 900)::int, 1))
    from usage_sample where ${mine} group by 1, 2, 3`.execute(db);
  const samples = await sql<{ n: string }>`
    select count(*)::text as n from usage_sample where host_id like 'bcm_h_%'`.execute(db);
  await sql`analyze usage_sample`.execute(db);
  log(
    `seeded ${tenants} customers under ${RESELLERS} resellers, ${books.length} price books, ` +
      `${devices.length} devices, ${samples.rows[0]?.n} usage samples (one per ${every} min) for ${month.text} ` +
      `in ${((performance.now() - seedStart) / 1000).toFixed(1)} s`,
  );

  const clock = { now: () => new Date(Math.max(Date.now(), month.end.getTime() + 3_600_000)) };
  const began = performance.now();
  const closed = await closeMonth(db, month, clock);
  const seconds = (performance.now() - began) / 1000;
  log(
    `closed ${closed} statements (${tenants} customers, ${RESELLERS} resellers) for ${month.text} in ${seconds.toFixed(2)} s`,
  );
  return { close_month_s: Number(seconds.toFixed(3)), tenants, statements: closed };
}
