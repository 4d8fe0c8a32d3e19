// Usage: ingest and the month query of a 10,000-phone reseller, on PostgreSQL (DATABASE_URL, else
// the local server; each run on a scratch database of its own).
//
// Ingest: agents' UsageReports (1,000 samples each) over the real gRPC gateway with TLS (TestAgent
// streams, one per host, all hosts at once; each agent keeps up to `--window` reports unacknowledged
// (default 1: the next report once the last one's UsageAck arrives; the agent's UsageSender keeps a
// window of 5,000 samples)), through ingestUsage with its exactly-once
// bookkeeping and rollups, until every sample is acknowledged. Baseline from the same run:
// ingestUsage called in process with the same reports and concurrency (no gRPC, no TLS).
//
// Query: QueryUsage through the public Connect API with an API key (tenant_admin of the
// reseller), one local month in +05:30 over the reseller and its 1,000 customers, grouped by
// tenant, page size 100, totals included. Seeded on the server (INSERT ... SELECT over
// generate_series, two connections at once) with the rows the query reads and no others: the
// month's daily rollups per device and per tenant, hourly and 15-minute ones at its edges, the
// devices' 15-minute slots (usage_device_month) for device counts, and one day of raw samples;
// the row counts are printed.
// Baseline from the same run: the same month summed in SQL from the device rollups alone (what
// the query would read without the tenant rollups). Prints figures, never asserts a time.
//
// `--only ingest|query|close` runs one part (figures of the others are null). `--keep-db NAME`
// runs on the PostgreSQL database NAME, created when missing and kept afterwards; a database the
// month was seeded into before is queried as it is (no seeding), so query runs repeat in seconds.
import { create } from '@bufbuild/protobuf';
import { timestampFromDate } from '@bufbuild/protobuf/wkt';
import { createClient } from '@connectrpc/connect';
import {
  bearerTransport,
  createAgentClient,
  createApiKey,
  enrollTestHost,
  ensureUsagePartitions,
  ingestUsage,
  insertTestDevice,
  planUsage,
  startTestControlPlane,
  TestAgent,
  type TestAgent as TestAgentType,
} from '@cphone/control-plane/testing';
import { agentv1, DeviceState, UsageGrouping, UsageService } from '@cphone/proto';
import { type RawBuilder, sql } from 'kysely';
import pg from 'pg';
import { arg, argText } from './_args.js';
import { closeMonthBench } from './_close-month.js';

const HOSTS = arg('hosts', 20);
const PER_HOST = arg('devices-per-host', 50);
const REPORTS = arg('reports', 20);
const PHONES = arg('phones', 10_000);
const TENANTS = arg('tenants', 1000);
const RAW_HOURS = arg('raw-hours', 24);
const QUERIES = arg('queries', 200);
// Reports in flight per agent (the agent's own window is 5,000 samples; more than one in flight
// is slower through the gateway for now, so the default keeps the figure comparable with earlier runs).
const WINDOW = arg('window', 1);
const ONLY = argText('only', '');
const KEEP_DB = argText('keep-db', '');
if (ONLY && !['ingest', 'query', 'close'].includes(ONLY))
  throw new Error(`--only ${ONLY}: ingest, query or close`);
const runs_ = (part: string) => !ONLY || ONLY === part;
process.env.DATABASE_URL ??= 'postgres://postgres@127.0.0.1:5432/postgres';

const MIN = 60_000;
const HOUR = 60 * MIN;
const DAY = 24 * HOUR;
const SAMPLES_PER_REPORT = 1000;

function monthOfUtc(ms: number): number {
  const d = new Date(ms);
  return Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), 1);
}

function percentile(sorted: number[], q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? 0;
}

async function keptDatabaseUrl(name: string): Promise<string> {
  if (!/^[a-z_][a-z0-9_]*$/.test(name)) throw new Error(`--keep-db ${name}: a lower-case SQL name`);
  const adminUrl = process.env.DATABASE_URL as string;
  const admin = new pg.Client({ connectionString: adminUrl });
  await admin.connect();
  try {
    const found = await admin.query('select 1 from pg_database where datname = $1', [name]);
    if (found.rowCount === 0) await admin.query(`create database ${name}`);
  } finally {
    await admin.end();
  }
  const url = new URL(adminUrl);
  url.pathname = `/${name}`;
  return url.toString();
}

const t = await startTestControlPlane(KEEP_DB ? { databaseUrl: await keptDatabaseUrl(KEEP_DB) } : {});
const plane = t.plane;
const db = plane.deps.db;
let ingestRowsPerS: number | undefined;
let directRowsPerS: number | undefined;
let p50: number | undefined;
let p99: number | undefined;
let baselineP50: number | undefined;
let closing: { close_month_s: number; statements: number } | undefined;
const counts: Record<string, number> = {};
try {
  if (runs_('ingest')) await ingest();
  if (runs_('query')) await query();
  if (runs_('close')) {
    // ---- closing one month's statements for 1,000 tenants ----
    closing = await closeMonthBench(db, {
      tenants: arg('close-tenants', 1000),
      log: (line) => console.log(line),
    });
  }
  console.log(
    JSON.stringify({
      bench: 'usage',
      ingest_rows_per_s: ingestRowsPerS === undefined ? null : Math.round(ingestRowsPerS),
      ingest_direct_rows_per_s: directRowsPerS === undefined ? null : Math.round(directRowsPerS),
      query_month_p50_ms: p50 === undefined ? null : Number(p50.toFixed(1)),
      query_month_p99_ms: p99 === undefined ? null : Number(p99.toFixed(1)),
      query_month_device_rollups_p50_ms: baselineP50 === undefined ? null : Number(baselineP50.toFixed(1)),
      close_month_s: closing?.close_month_s ?? null,
      close_month_statements: closing?.statements ?? null,
      rows: counts,
      phones: PHONES,
      tenants: TENANTS,
    }),
  );
} finally {
  await t.close();
}

async function ingest() {
  const hosts: { host: Awaited<ReturnType<typeof enrollTestHost>>; devices: string[]; sequence: number }[] =
    [];
  for (let h = 0; h < HOSTS; h++) {
    const host = await enrollTestHost(db);
    const devices: string[] = [];
    for (let d = 0; d < PER_HOST; d++) {
      const { deviceId } = await insertTestDevice(db, {
        hostId: host.hostId,
        tenantId: `ingest_t${h % 10}`,
        state: 'running',
        placedAt: new Date(Date.now() - 3 * DAY),
      });
      devices.push(deviceId);
    }
    hosts.push({ host, devices, sequence: 0 });
  }
  const minutesPerReport = Math.max(1, Math.floor(SAMPLES_PER_REPORT / PER_HOST));
  // Both passes' minutes end before now (samples ahead of the clock are refused).
  const firstMinute = Math.floor((Date.now() - 2 * REPORTS * minutesPerReport * MIN - HOUR) / MIN) * MIN;
  const report = (h: (typeof hosts)[number], index: number) => {
    const samples = [];
    for (let m = 0; m < minutesPerReport; m++) {
      const start = firstMinute + (index * minutesPerReport + m) * MIN;
      for (const deviceId of h.devices) {
        h.sequence++;
        samples.push(
          create(agentv1.UsageSampleSchema, {
            sequence: BigInt(h.sequence),
            deviceId,
            tenantId: '',
            startTime: timestampFromDate(new Date(start)),
            endTime: timestampFromDate(new Date(start + MIN)),
            vcpuMillicores: 2000,
            memoryMib: 4096,
            storageGib: 16,
            state: DeviceState.RUNNING,
          }),
        );
      }
    }
    return samples;
  };

  const client = createAgentClient(plane.grpcPort, plane.deps.gateway.caPem ?? '', {
    'grpc.use_local_subchannel_pool': 1,
  });
  const agents: TestAgentType[] = [];
  for (const h of hosts) {
    const agent = TestAgent.connect(client, h.host);
    await agent.next('welcome', 30_000);
    agents.push(agent);
  }
  let rows = 0;
  const began = performance.now();
  await Promise.all(
    hosts.map(async (h, i) => {
      const agent = agents[i] as TestAgentType;
      // Up to WINDOW reports unacknowledged, as the agent's UsageSender keeps its window of samples
      // in flight; acks are cumulative (the cursor).
      const inFlight: bigint[] = [];
      for (let r = 0; r < REPORTS; r++) {
        if (inFlight.length >= WINDOW) {
          const oldest = inFlight.shift() as bigint;
          await agent.next('usageAck', 60_000, (ack) => ack.sequence >= oldest);
        }
        const samples = report(h, r);
        agent.send({ case: 'usageReport', value: { samples } });
        inFlight.push(BigInt(h.sequence));
        rows += samples.length;
      }
      const last = BigInt(h.sequence);
      await agent.next('usageAck', 60_000, (ack) => ack.sequence >= last);
    }),
  );
  const ingestSeconds = (performance.now() - began) / 1000;
  ingestRowsPerS = rows / ingestSeconds;
  for (const agent of agents) agent.call.end();

  let directRows = 0;
  const directBegan = performance.now();
  await Promise.all(
    hosts.map(async (h) => {
      for (let r = REPORTS; r < 2 * REPORTS; r++) {
        const samples = report(h, r);
        const intake = await ingestUsage(db, h.host.hostId, samples, new Date());
        directRows += intake.inserted;
      }
    }),
  );
  const directSeconds = (performance.now() - directBegan) / 1000;
  directRowsPerS = directRows / directSeconds;
  console.log(
    `ingest: ${rows} samples from ${HOSTS} agents (${PER_HOST} phones each, reports of ${SAMPLES_PER_REPORT}) over gRPC+TLS in ${ingestSeconds.toFixed(1)} s: ${ingestRowsPerS.toFixed(0)} rows/s`,
  );
  console.log(
    `        baseline, ingestUsage in process (no gRPC): ${directRows} samples in ${directSeconds.toFixed(1)} s: ${directRowsPerS.toFixed(0)} rows/s`,
  );
}

async function query() {
  // ---- seed a month for a 10,000-phone reseller ----
  const monthStart = Date.UTC(2026, 10, 1) - (5 * HOUR + 30 * MIN); // 1 Nov 00:00 +05:30
  const monthEnd = Date.UTC(2026, 11, 1) - (5 * HOUR + 30 * MIN);
  const reseller = 'bench_reseller';
  const tenants = Array.from({ length: TENANTS }, (_, i) => `bench_c${String(i).padStart(4, '0')}`);
  const runs = planUsage({ tenantIds: tenants, start: new Date(monthStart), end: new Date(monthEnd) }).runs;
  const seeded = await db.selectFrom('tenant').select('id').where('id', '=', reseller).executeTakeFirst();
  if (seeded) console.log(`the month was seeded into --keep-db ${KEEP_DB} before: not seeding`);
  else await seed();
  async function seed() {
    await sql`insert into tenant (id, parent_id, kind, display_name, update_time)
    values (${reseller}, 'platform', 'reseller', 'bench reseller', now())`.execute(db);
    for (let i = 0; i < tenants.length; i += 500) {
      await db
        .insertInto('tenant')
        .values(
          tenants.slice(i, i + 500).map((id) => ({
            id,
            parent_id: reseller,
            kind: 'customer' as const,
            display_name: id,
            update_time: new Date(),
          })),
        )
        .execute();
    }
    const deviceOf = (p: string) => sql.raw(`'bench_d' || lpad((${p})::text, 5, '0')`);
    const tenantOf = (p: string) => sql.raw(`'bench_c' || lpad(((${p}) % ${TENANTS})::text, 4, '0')`);
    const hostOf = (p: string) => sql.raw(`'bench_h' || ((${p}) / 50)`);
    // The rollup rows the month's query reads, and no others: the runs that tile the month (daily rows
    // for whole UTC days, hourly and 15-minute rows at the edges), every phone 80 % running.
    const runTable = sql`unnest(${runs.map((r) => r.grain)}::int2[], ${runs.map((r) => new Date(r.lo).toISOString())}::timestamptz[],
    ${runs.map((r) => new Date(r.hi).toISOString())}::timestamptz[]) as run(grain, lo, hi)
    cross join lateral generate_series(run.lo, run.hi - interval '1 minute', make_interval(mins => run.grain)) as b`;
    const counters = (phones: RawBuilder<unknown>) => sql`
    (run.grain * 48)::int8 * ${phones}, (run.grain * 12)::int8 * ${phones}, (run.grain * 48)::int8 * 2000 * ${phones},
    (run.grain * 48)::int8 * 4096 * ${phones}, (run.grain * 60)::int8 * 16 * ${phones}`;
    const seedBegan = performance.now();
    // Two connections at once, phones split in halves.
    const half = Math.ceil(PHONES / 2);
    const phoneRange = (part: number) =>
      sql`generate_series(${part * half}::int, ${Math.min(PHONES, (part + 1) * half) - 1}::int) as p`;
    await Promise.all(
      [0, 1].map((part) =>
        sql`insert into usage_rollup_device (tenant_id, grain, bucket_start, device_id, host_id,
          running_s, stopped_s, vcpu_mcs, memory_mibs, storage_gibs)
        select ${tenantOf('p')}, run.grain, b, ${deviceOf('p')}, ${hostOf('p')}, ${counters(sql`1`)}
        from ${phoneRange(part)} cross join ${runTable}`.execute(db),
      ),
    );
    await sql`insert into usage_rollup_tenant (tenant_id, grain, bucket_start,
      running_s, stopped_s, vcpu_mcs, memory_mibs, storage_gibs)
    select ${tenantOf('t')}, run.grain, b, ${counters(sql.raw(`(${Math.floor(PHONES / TENANTS)} + (t < ${PHONES % TENANTS})::int)`))}
    from generate_series(0, ${Math.min(TENANTS, PHONES) - 1}::int) as t cross join ${runTable}`.execute(db);
    // The 15-minute slots the runs cover, per UTC month, for distinct device counts.
    const slots = new Map<number, string[]>();
    for (const r of runs) {
      for (let at = r.lo; at < r.hi; at += 15 * MIN) {
        const month = monthOfUtc(at);
        const bits = slots.get(month) ?? Array.from({ length: 31 * 96 }, () => '0');
        bits[(at - month) / (15 * MIN)] = '1';
        slots.set(month, bits);
      }
    }
    for (const [month, bits] of slots) {
      await sql`insert into usage_device_month (tenant_id, month, device_id, slots)
      select ${tenantOf('p')}, ${new Date(month).toISOString()}::timestamptz, ${deviceOf('p')},
        ${bits.join('')}::bit(${sql.lit(31 * 96)})
      from generate_series(0, ${PHONES - 1}::int) as p`.execute(db);
    }
    // A day of raw samples (what a day of the intake leaves), generated on the server into a table of
    // its own that is indexed once filled and then attached as the month's partition (building the
    // indexes in one pass is much faster than keeping them row by row), unless the month has a
    // partition already.
    const rawStart = Date.UTC(2026, 10, 15);
    const rawMonth = monthOfUtc(rawStart);
    const rawNext = Date.UTC(2026, 11, 1);
    const partition = 'usage_sample_p202611';
    const exists = await sql<{ r: string | null }>`select to_regclass(${partition})::text as r`.execute(db);
    const detached = !exists.rows[0]?.r;
    const target = detached ? partition : 'usage_sample';
    if (detached)
      await sql`create table ${sql.table(partition)} (like usage_sample including defaults)`.execute(db);
    await Promise.all(
      [0, 1].map((part) =>
        sql`insert into ${sql.table(target)} (host_id, sequence, device_id, tenant_id, start_time, end_time,
          vcpu_millicores, memory_mib, storage_gib, state)
        select ${hostOf('p')}, (p % 50) * 100000 + m + 1, ${deviceOf('p')}, ${tenantOf('p')},
          ${new Date(rawStart).toISOString()}::timestamptz + make_interval(mins => m),
          ${new Date(rawStart).toISOString()}::timestamptz + make_interval(mins => m + 1), 2000, 4096, 16, 'running'
        from ${phoneRange(part)} cross join generate_series(0, ${RAW_HOURS * 60 - 1}::int) as m`.execute(db),
      ),
    );
    if (detached) {
      await sql`alter table usage_sample attach partition ${sql.table(partition)}
      for values from (${sql.lit(new Date(rawMonth).toISOString())}) to (${sql.lit(new Date(rawNext).toISOString())})`.execute(
        db,
      );
    }
    await ensureUsagePartitions(db, [rawStart]);
    await sql`vacuum analyze usage_rollup_device`.execute(db);
    await sql`vacuum analyze usage_device_month`.execute(db);
    await sql`vacuum analyze usage_rollup_tenant`.execute(db);
    await sql`analyze usage_sample`.execute(db);
    console.log(
      `seeded on the server (generate_series) in ${((performance.now() - seedBegan) / 1000).toFixed(0)} s`,
    );
  }
  for (const table of ['usage_rollup_device', 'usage_rollup_tenant', 'usage_device_month', 'usage_sample']) {
    const r = await sql<{ n: number }>`select count(*)::int8 as n from ${sql.table(table)}`.execute(db);
    counts[table] = Number(r.rows[0]?.n ?? 0);
  }
  console.log(
    `${PHONES} phones in ${TENANTS} customers of one reseller; rows: ${Object.entries(counts)
      .map(([k, v]) => `${k} ${v}`)
      .join(', ')} (raw: ${RAW_HOURS} h of samples; the rest of the ingest figures' rows included)`,
  );

  // ---- query ----
  // Made in the database (a kept database has no bootstrap token any more).
  const { token } = await createApiKey(db, {
    tenantId: reseller,
    displayName: 'bench',
    role: 'tenant_admin',
  });
  const usage = createClient(UsageService, bearerTransport(plane.httpUrl, token));
  const request = {
    tenantId: reseller,
    includeDescendants: true,
    startTime: timestampFromDate(new Date(monthStart)),
    endTime: timestampFromDate(new Date(monthEnd)),
    timeZone: '+05:30',
    groupBy: UsageGrouping.TENANT,
    pageSize: 100,
  };
  const first = await usage.queryUsage(request);
  const expectedSeconds = BigInt(Math.floor(((30 * DAY) / 1000) * 0.8)) * BigInt(PHONES);
  console.log(
    `query: page of ${first.usageRecords.length} rows; total device_seconds ${first.total?.deviceSeconds} (seeded ${expectedSeconds}), device_count ${first.total?.deviceCount}`,
  );
  for (let i = 0; i < 10; i++) await usage.queryUsage(request);
  const times: number[] = [];
  for (let i = 0; i < QUERIES; i++) {
    const began = performance.now();
    await usage.queryUsage(request);
    times.push(performance.now() - began);
  }
  times.sort((a, b) => a - b);
  p50 = percentile(times, 0.5);
  p99 = percentile(times, 0.99);

  // Baseline: the same month's sums from the device rollups alone (no tenant rollups).
  const baseline: number[] = [];
  for (let i = 0; i < Math.min(QUERIES, 20); i++) {
    const began = performance.now();
    await sql`select r.tenant_id, sum(r.running_s), sum(r.stopped_s), sum(r.vcpu_mcs), sum(r.memory_mibs), sum(r.storage_gibs)
      from unnest(${runs.map((r) => r.grain)}::int2[], ${runs.map((r) => new Date(r.lo).toISOString())}::timestamptz[],
        ${runs.map((r) => new Date(r.hi).toISOString())}::timestamptz[]) as run(grain, lo, hi)
      join usage_rollup_device r on r.grain = run.grain and r.bucket_start >= run.lo and r.bucket_start < run.hi
      where r.tenant_id = any(${tenants}::text[]) group by 1`.execute(db);
    baseline.push(performance.now() - began);
  }
  baseline.sort((a, b) => a - b);
  if (arg('explain', 0) === 1) {
    const plan = await sql<{
      'QUERY PLAN': string;
    }>`explain (analyze, buffers) select r.tenant_id, sum(r.running_s)
      from unnest(${runs.map((r) => r.grain)}::int2[], ${runs.map((r) => new Date(r.lo).toISOString())}::timestamptz[],
        ${runs.map((r) => new Date(r.hi).toISOString())}::timestamptz[]) as run(grain, lo, hi)
      join usage_rollup_device r on r.grain = run.grain and r.bucket_start >= run.lo and r.bucket_start < run.hi
      where r.tenant_id = any(${tenants}::text[]) group by 1`.execute(db);
    console.log(plan.rows.map((r) => r['QUERY PLAN']).join('\n'));
  }
  console.log(
    `QueryUsage, one month in +05:30, ${TENANTS} customers (${PHONES} phones), by tenant, page 100, with totals, through the Connect API: p50 ${p50.toFixed(1)} ms  p99 ${p99.toFixed(1)} ms (${QUERIES} calls, one after another)`,
  );
  console.log(
    `        baseline, the month's sums from the device rollups alone, in SQL: p50 ${percentile(baseline, 0.5).toFixed(1)} ms`,
  );
  baselineP50 = percentile(baseline, 0.5);
}
