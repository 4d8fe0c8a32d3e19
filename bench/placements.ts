// Committed placements per second through the public API on PostgreSQL, at 10,000 hosts with live
// agent streams. Three processes besides PostgreSQL, so each one's CPU is its own:
//  - the control plane (_placements-control-plane.ts), hosts enrolled straight into its store;
//  - the agents (_placements-agents.ts): one real AgentService stream per host over TLS, 500
//    streams multiplexed on each HTTP/2 connection (20 connections for 10,000 hosts), each saying
//    Hello and heartbeating every 10 s; they receive the desired device set of every create that
//    lands on their host;
//  - the API client (_placements-client.ts): BatchCreateDevices as Connect JSON, every call with a
//    request id (idempotency on), eight tenants, devices of three sizes placed by bin-pack (60%),
//    spread (20%), tenant spread (10%) or a zone selector (10%).
// Hosts come in three sizes (8, 16 and 32 phones) and fill up as the run goes (bin-pack fills one
// host before the next). First 100-device batches from 4 callers (placements_per_s), then single
// creates from 16 callers, which the planner commits together (single_per_s: group commit), then
// single creates open-loop at half that rate, latency from the scheduled send time (create_p99_ms:
// one create end to end). The baseline printed beside them: the same single creates from one
// caller (no group commit to share). For each phase the control plane's CPU per device, and how
// much of it went to deciding on the fleet view (FleetCache.decisionMs). `--hosts 10000 --seconds
// 15` (each closed-loop phase; the one-caller phase takes a third of it, the open-loop two thirds).
// Prints figures, never asserts a time.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createClient } from '@connectrpc/connect';
import { bearerTransport } from '@cphone/control-plane';
import { createTestDatabase } from '@cphone/control-plane/testing';
import { ImageService, TenantKind, TenantService } from '@cphone/proto';
import { waitFor } from '@cphone/proto/testing';
import { sql } from 'kysely';
import { arg } from './_args.js';
import { Child } from './_child.js';
import type { AgentsReply, AgentsRequest } from './_placements-agents.js';
import type { ClientReply, ClientRequest, Figures, Target } from './_placements-client.js';
import type { PlaneReply, PlaneRequest } from './_placements-control-plane.js';

const HOSTS = arg('hosts', 10_000);
const SECONDS = arg('seconds', 15);
const BATCH = 100;
const BATCH_CALLERS = 4;
const SINGLE_CALLERS = arg('single-callers', 16);
const TENANTS = 8;

type Stats = Extract<PlaneReply, { op: 'stats' }>;
type Status = Extract<AgentsReply, { op: 'status' }>;

// The figures are PostgreSQL's: without DATABASE_URL, the local server's scratch database.
process.env.DATABASE_URL ??= 'postgres://postgres@127.0.0.1:5432/postgres';
const database = await createTestDatabase({ kind: 'postgres' });
const dataDir = await mkdtemp(join(tmpdir(), 'cphone-bench-'));
const plane = Child.start<PlaneRequest, PlaneReply>('control plane', './_placements-control-plane.ts', {
  env: { DATABASE_URL: database.url ?? '', PLACEMENTS_DATA_DIR: dataDir },
});
const agents = Child.start<AgentsRequest, AgentsReply>('agents', './_placements-agents.ts');
const client = Child.start<ClientRequest, ClientReply>('api client', './_placements-client.ts');

const fmt = (x: number, digits = 0) => x.toFixed(digits);
const stats = () => plane.ask<Stats>({ op: 'stats' });

try {
  await Promise.all([plane.ready(), agents.ready(), client.ready()]);
  const info = await plane.ask<Extract<PlaneReply, { op: 'ready' }>>({ op: 'ready' });
  const admin = bearerTransport(info.httpUrl, info.token);
  await createClient(ImageService, admin).createImage({
    imageId: 'android-14',
    image: { displayName: 'Android 14', containerImage: 'redroid/redroid:14.0.0-latest', archs: ['arm64'] },
  });
  const tenants: string[] = [];
  for (let k = 0; k < TENANTS; k++) {
    const made = await createClient(TenantService, admin).createTenant({
      kind: TenantKind.CUSTOMER,
      displayName: `bench ${k}`,
    });
    tenants.push(made.tenant?.tenantId ?? '');
  }
  const target: Target = { url: info.httpUrl, token: info.token, imageId: 'android-14', tenants };

  // --- the fleet: enrolled, then connected through real agent streams --------------------------
  const { hosts } = await plane.ask<Extract<PlaneReply, { op: 'enrolled' }>>({ op: 'enroll', count: HOSTS });
  const connectStart = performance.now();
  await agents.ask({ op: 'connect', port: info.grpcPort, caPem: info.caPem, hosts });
  await waitFor(
    'every agent welcomed',
    () => agents.ask<Status>({ op: 'status' }),
    (s) => s.welcomed >= HOSTS,
    { timeoutMs: 150_000, intervalMs: 500 },
  );
  const connectS = (performance.now() - connectStart) / 1000;
  const afterConnect = await agents.ask<Status>({ op: 'status' });
  if (afterConnect.ended > 0) console.log('  streams ended while connecting:', afterConnect.ends);
  await waitFor('every host in the view', stats, (s) => s.viewHosts >= HOSTS && s.connected >= HOSTS, {
    timeoutMs: 30_000,
    intervalMs: 200,
  });
  const connected = await stats();
  // What the control plane spends with no creates: heartbeats, pings, the liveness passes.
  await new Promise((resolve) => setTimeout(resolve, 5000));
  const rested = await stats();
  const restCores = (rested.cpuMicros - connected.cpuMicros) / 1000 / (rested.wallMs - connected.wallMs);
  console.log(`placements bench: ${HOSTS} hosts on PostgreSQL, ${TENANTS} tenants, three processes`);
  console.log(
    `  fleet    ${HOSTS} agent streams welcomed in ${fmt(connectS, 1)} s; the fleet view took their Hellos as ` +
      `${connected.rereads} re-read rows (whole reads: ${JSON.stringify(connected.loads)}); ` +
      `at rest the control plane uses ${fmt(restCores * 100, 1)}% of a core`,
  );

  let call = 0;
  interface Phase {
    figures: Figures;
    /** Control-plane CPU per device placed, and how much of it went to deciding on the fleet view. */
    cpuUs: number;
    decisionUs: number;
  }
  async function phase(request: ClientRequest): Promise<Phase> {
    const before = await stats();
    const figures = await client.ask<Extract<ClientReply, { op: 'figures' }>>(request);
    const after = await stats();
    call += figures.calls;
    if (figures.errors > 0) console.log(`  ${figures.errors} calls failed, first: ${figures.firstError}`);
    const per = Math.max(1, figures.devices);
    return {
      figures,
      cpuUs: (after.cpuMicros - before.cpuMicros) / per,
      decisionUs: ((after.decisionMs - before.decisionMs) * 1000) / per,
    };
  }
  const closed = (seconds: number, perCall: number, concurrency: number, calls = 1_000_000) =>
    phase({ op: 'closed', target, calls, seconds, perCall, concurrency, first: call });

  // A short warm-up so JIT and connection setup do not land in the first figure.
  await closed(60, BATCH, 2, 4);
  await closed(60, 1, SINGLE_CALLERS, 200);

  const batched = await closed(SECONDS, BATCH, BATCH_CALLERS);
  const batchedRate = batched.figures.devices / batched.figures.seconds;
  const single = await closed(SECONDS, 1, SINGLE_CALLERS);
  const singleRate = single.figures.devices / single.figures.seconds;
  const sequential = await closed(Math.ceil(SECONDS / 3), 1, 1);
  const sequentialRate = sequential.figures.devices / sequential.figures.seconds;
  const rate = Math.max(1, Math.round(singleRate / 2));
  const openSeconds = Math.ceil((SECONDS * 2) / 3);
  const open = await phase({ op: 'open', target, rate, seconds: openSeconds, first: call });

  const end = await stats();
  const fleet = await sql<{ used: number; full: number; devices: number }>`
    select count(*) filter (where allocated_devices > 0)::int as used,
      count(*) filter (where allocated_devices >= capacity_devices)::int as "full",
      coalesce(sum(allocated_devices), 0)::int as devices
    from host`.execute(database.db);
  const agentsEnd = await agents.ask<Status>({ op: 'status' });
  const f = fleet.rows[0];
  const row = (label: string, placed: number, p: Phase, what: string) =>
    console.log(
      `  ${label.padEnd(9)}${fmt(placed).padStart(6)} placements/s  p50 ${fmt(p.figures.p50Ms, 1)} ms  ` +
        `p99 ${fmt(p.figures.p99Ms, 1)} ms per call; control plane ${fmt(p.cpuUs)} µs CPU per device, ` +
        `${fmt(p.decisionUs, 1)} µs of it deciding on the fleet view  (${what})`,
    );
  row(
    'batched',
    batchedRate,
    batched,
    `${batched.figures.devices} devices, ${BATCH} per call, ${BATCH_CALLERS} callers`,
  );
  row(
    'single',
    singleRate,
    single,
    `${single.figures.devices} devices, 1 per call, ${SINGLE_CALLERS} callers, group-committed`,
  );
  row(
    'baseline',
    sequentialRate,
    sequential,
    `${sequential.figures.devices} devices, 1 per call, 1 caller: nothing to commit together`,
  );
  row(
    'open',
    open.figures.devices / open.figures.seconds,
    open,
    `${open.figures.devices} single creates on a timetable of ${rate}/s for ${openSeconds} s, latency from the scheduled send`,
  );
  console.log(
    `  group commit: single ${fmt(singleRate / sequentialRate, 1)}x one caller; batched ${fmt(batchedRate / singleRate, 1)}x single`,
  );
  console.log(
    `  hosts    ${f?.used ?? 0} of ${HOSTS} hold phones, ${f?.full ?? 0} full (${f?.devices ?? 0} phones); ` +
      `${agentsEnd.desiredSets} desired sets reached the agents; ${agentsEnd.live} streams live, ${agentsEnd.ended} reopened`,
  );
  if (agentsEnd.ended > afterConnect.ended) console.log('  streams ended:', agentsEnd.ends);
  console.log(
    `  view     whole reads ${JSON.stringify(end.loads)}, ${end.rereads} rows re-read after notices, ` +
      `${end.reindexes} re-indexes (hosts joining)`,
  );
  console.log(
    JSON.stringify({
      bench: 'placements',
      hosts: HOSTS,
      placements_per_s: Math.round(batchedRate),
      single_per_s: Math.round(singleRate),
      create_p99_ms: Number(fmt(open.figures.p99Ms, 2)),
      sequential_per_s: Math.round(sequentialRate),
      cpu_us_per_create: Math.round(single.cpuUs),
      decision_us_per_create: Number(fmt(single.decisionUs, 1)),
      cpu_us_per_batched_placement: Math.round(batched.cpuUs),
    }),
  );
} finally {
  await agents.ask({ op: 'stop' }).catch(() => undefined);
  await Promise.all([agents.stop(), client.stop(), plane.stop()]);
  await rm(dataDir, { recursive: true, force: true });
  await database.close();
}
