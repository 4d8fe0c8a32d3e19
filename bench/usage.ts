// Usage: ingest and the month query of a 10,000-phone reseller, on PostgreSQL (DATABASE_URL, else
// the local server; each run on a scratch database of its own).
//
// Ingest: agents' UsageReports (1,000 samples each) over the real gRPC gateway with TLS (TestAgent
// streams, one per host, all hosts at once; each agent sends its next report once the UsageAck of
// the last one arrives, as the agent's spool does), through ingestUsage with its exactly-once
// bookkeeping and rollups, until every sample is acknowledged. Baseline from the same run:
// ingestUsage called in process with the same reports and concurrency (no gRPC, no TLS).
//
// Query: QueryUsage through the public Connect API with an API key (tenant_admin of the
// reseller), one local month in +05:30 over the reseller and its 1,000 customers, grouped by
// tenant, page size 100, totals included. Seeded with COPY: a month of hourly and daily rollups
// per device and per tenant, 15-minute rollups for the UTC days the month's edges fall in (the
// only 15-minute rows the query reads), and one day of raw samples; the row counts are printed.
// Baseline from the same run: the same month summed in SQL from the device rollups alone (what
// the query would read without the tenant rollups). Prints figures, never asserts a time.
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { create } from '@bufbuild/protobuf';
import { timestampFromDate } from '@bufbuild/protobuf/wkt';
import { createClient } from '@connectrpc/connect';
import {
  bearerTransport,
  createAgentClient,
  enrollTestHost,
  ensureUsagePartitions,
  ingestUsage,
  insertTestDevice,
  planUsage,
  startTestControlPlane,
  TestAgent,
  type TestAgent as TestAgentType,
} from '@cphone/control-plane/testing';
import { ApiKeyService, agentv1, DeviceState, Role, UsageGrouping, UsageService } from '@cphone/proto';
import { sql } from 'kysely';
import pg from 'pg';
import { from as copyFrom } from 'pg-copy-streams';
import { arg } from './_args.js';

const HOSTS = arg('hosts', 20);
const PER_HOST = arg('devices-per-host', 50);
const REPORTS = arg('reports', 20);
const PHONES = arg('phones', 10_000);
const TENANTS = arg('tenants', 1000);
const RAW_HOURS = arg('raw-hours', 24);
const QUERIES = arg('queries', 200);
process.env.DATABASE_URL ??= 'postgres://postgres@127.0.0.1:5432/postgres';

const MIN = 60_000;
const HOUR = 60 * MIN;
const DAY = 24 * HOUR;
const SAMPLES_PER_REPORT = 1000;

function percentile(sorted: number[], q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? 0;
}

const t = await startTestControlPlane();
const plane = t.plane;
const db = plane.deps.db;
const databaseUrl = (plane.deps.config.databaseUrl ?? '') as string;
try {
  // ---- ingest ----
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
      for (let r = 0; r < REPORTS; r++) {
        const samples = report(h, r);
        agent.send({ case: 'usageReport', value: { samples } });
        const last = BigInt(h.sequence);
        await agent.next('usageAck', 60_000, (ack) => ack.sequence >= last);
        rows += samples.length;
      }
    }),
  );
  const ingestSeconds = (performance.now() - began) / 1000;
  const ingestRowsPerS = rows / ingestSeconds;
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
  const directRowsPerS = directRows / directSeconds;
  console.log(
    `ingest: ${rows} samples from ${HOSTS} agents (${PER_HOST} phones each, reports of ${SAMPLES_PER_REPORT}) over gRPC+TLS in ${ingestSeconds.toFixed(1)} s: ${ingestRowsPerS.toFixed(0)} rows/s`,
  );
  console.log(
    `        baseline, ingestUsage in process (no gRPC): ${directRows} samples in ${directSeconds.toFixed(1)} s: ${directRowsPerS.toFixed(0)} rows/s`,
  );

  // ---- seed a month for a 10,000-phone reseller ----
  const monthStart = Date.UTC(2026, 10, 1) - (5 * HOUR + 30 * MIN); // 1 Nov 00:00 +05:30
  const monthEnd = Date.UTC(2026, 11, 1) - (5 * HOUR + 30 * MIN);
  const reseller = 'bench_reseller';
  const tenants = Array.from({ length: TENANTS }, (_, i) => `bench_c${String(i).padStart(4, '0')}`);
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
  const pool = new pg.Pool({ connectionString: databaseUrl, max: 2 });
  const copy = async (table: string, columns: string, lines: () => Generator<string>) => {
    const conn = await pool.connect();
    try {
      const gen = lines();
      const source = Readable.from(
        (function* () {
          let batch = '';
          for (const line of gen) {
            batch += line;
            if (batch.length > 1 << 16) {
              yield batch;
              batch = '';
            }
          }
          if (batch) yield batch;
        })(),
      );
      await pipeline(source, conn.query(copyFrom(`copy ${table} (${columns}) from stdin`)));
    } finally {
      conn.release();
    }
  };
  const deviceOf = (p: number) => ({
    id: `bench_d${String(p).padStart(5, '0')}`,
    tenant: tenants[p % TENANTS] ?? '',
  });
  // Buckets a device uses: every hour and day of the month; 15-minute slots of the edge UTC days.
  const firstDay = Math.floor(monthStart / DAY) * DAY;
  const lastDay = Math.floor(monthEnd / DAY) * DAY;
  const buckets: [number, number][] = [];
  for (let d = firstDay; d <= lastDay; d += DAY) buckets.push([1440, d]);
  for (let h = firstDay; h < lastDay + DAY; h += HOUR) buckets.push([60, h]);
  for (const d of [firstDay, lastDay]) for (let s = d; s < d + DAY; s += 15 * MIN) buckets.push([15, s]);
  const counters = (grain: number, phones: number) => {
    const seconds = grain * 60 * phones;
    return `${Math.floor(seconds * 0.8)}\t${seconds - Math.floor(seconds * 0.8)}\t${Math.floor(seconds * 0.8) * 2000}\t${Math.floor(seconds * 0.8) * 4096}\t${seconds * 16}`;
  };
  const seedBegan = performance.now();
  await copy(
    'usage_rollup_device',
    'tenant_id, grain, bucket_start, device_id, host_id, running_s, stopped_s, vcpu_mcs, memory_mibs, storage_gibs',
    function* () {
      for (let p = 0; p < PHONES; p++) {
        const d = deviceOf(p);
        const host = `bench_h${Math.floor(p / 50)}`;
        for (const [grain, at] of buckets) {
          yield `${d.tenant}\t${grain}\t${new Date(at).toISOString()}\t${d.id}\t${host}\t${counters(grain, 1)}\n`;
        }
      }
    },
  );
  const perTenant = Math.ceil(PHONES / TENANTS);
  await copy(
    'usage_rollup_tenant',
    'tenant_id, grain, bucket_start, running_s, stopped_s, vcpu_mcs, memory_mibs, storage_gibs',
    function* () {
      for (const tenant of tenants) {
        for (const [grain, at] of buckets) {
          yield `${tenant}\t${grain}\t${new Date(at).toISOString()}\t${counters(grain, perTenant)}\n`;
        }
      }
    },
  );
  const rawStart = Date.UTC(2026, 10, 15);
  await ensureUsagePartitions(db, [rawStart]);
  await copy(
    'usage_sample',
    'host_id, sequence, device_id, tenant_id, start_time, end_time, vcpu_millicores, memory_mib, storage_gib, state',
    function* () {
      for (let p = 0; p < PHONES; p++) {
        const d = deviceOf(p);
        const host = `bench_h${Math.floor(p / 50)}`;
        for (let m = 0; m < RAW_HOURS * 60; m++) {
          const at = rawStart + m * MIN;
          yield `${host}\t${(p % 50) * 100_000 + m + 1}\t${d.id}\t${d.tenant}\t${new Date(at).toISOString()}\t${new Date(at + MIN).toISOString()}\t2000\t4096\t16\trunning\n`;
        }
      }
    },
  );
  await sql`vacuum analyze usage_rollup_device`.execute(db);
  await sql`vacuum analyze usage_rollup_tenant`.execute(db);
  await sql`analyze usage_sample`.execute(db);
  const seedSeconds = (performance.now() - seedBegan) / 1000;
  const counts: Record<string, number> = {};
  for (const table of ['usage_rollup_device', 'usage_rollup_tenant', 'usage_sample']) {
    const r = await sql<{ n: number }>`select count(*)::int8 as n from ${sql.table(table)}`.execute(db);
    counts[table] = Number(r.rows[0]?.n ?? 0);
  }
  console.log(
    `seeded with COPY in ${seedSeconds.toFixed(0)} s: ${PHONES} phones in ${TENANTS} customers of one reseller; rows: ${Object.entries(
      counts,
    )
      .map(([k, v]) => `${k} ${v}`)
      .join(', ')} (raw: ${RAW_HOURS} h of samples; the rest of the ingest figures' rows included)`,
  );

  // ---- query ----
  const admin = bearerTransport(plane.httpUrl, plane.bootstrapToken ?? '');
  const { secret } = await createClient(ApiKeyService, admin).createApiKey({
    tenantId: reseller,
    displayName: 'bench',
    role: Role.TENANT_ADMIN,
  });
  const usage = createClient(UsageService, bearerTransport(plane.httpUrl, secret));
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
  const p50 = percentile(times, 0.5);
  const p99 = percentile(times, 0.99);

  // Baseline: the same month's sums from the device rollups alone (no tenant rollups).
  const runs = planUsage({ tenantIds: tenants, start: new Date(monthStart), end: new Date(monthEnd) }).runs;
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
  await pool.end();
  console.log(
    JSON.stringify({
      bench: 'usage',
      ingest_rows_per_s: Math.round(ingestRowsPerS),
      ingest_direct_rows_per_s: Math.round(directRowsPerS),
      query_month_p50_ms: Number(p50.toFixed(1)),
      query_month_p99_ms: Number(p99.toFixed(1)),
      query_month_device_rollups_p50_ms: Number(percentile(baseline, 0.5).toFixed(1)),
      // Billing's statement close adds close_month_s here.
      rows: counts,
      phones: PHONES,
      tenants: TENANTS,
    }),
  );
} finally {
  await t.close();
}
