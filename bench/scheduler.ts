// Scheduling decisions as the API takes them, at 10,000 and 100,000 hosts, beside the bare
// scheduler and two baselines, all measured in this run on one thread (the figures are for one core).
//
// - API path: what the plan applier does for one create on the replica's fleet view
//   (control-plane/src/placement): Placer.place() on the view's live snapshot (the placement is held
//   on the view), recheck() against the chosen hosts' rows (here the view's rows stand in for the
//   rows the transaction locks), the host rows as the ledger write returns them applied to the view,
//   and the hold settled. Varied specs (four sizes), strategies (bin-pack, spread, tenant spread,
//   node selectors, an amd64 image) and 50 tenants. Between creates, and timed apart, the other
//   changes the view follows: a deletion's rows (the oldest device goes once 5,000 are live) and
//   another replica's placement on a random host (one every fourth create), each applied as a row.
// - Bare place(): a snapshot built once and never committed, the same requests.
// - Full-scan baseline: the same place() with the capacity index switched off and no candidate
//   limit, so every host is filtered and every feasible one scored.
// - Previous API path: the snapshot rebuilt from the fleet's rows for every create, as the fleet
//   cache did when every reserve, release and patch invalidated it.
// Prints figures and a final JSON line; never asserts a time.
import { ResourceExhaustedError } from '../control-plane/src/errors.js';
import { toHostInput } from '../control-plane/src/placement/host-input.js';
import { type Ask, arriving, FleetView, Placer, recheck } from '../control-plane/src/placement/index.js';
import {
  buildSnapshot,
  type ImageRequirements,
  type PlacementRequest,
  place,
  type Resources,
  type Snapshot,
} from '../control-plane/src/scheduler/index.js';
import type { SchedulingRow } from '../control-plane/src/store/hosts.js';
import { arg } from './_args.js';

const HOSTS = arg('hosts', 10_000);
const BIG = arg('big', 100_000);
const API_DECISIONS = arg('decisions', 50_000);
const API_DECISIONS_BIG = arg('decisions-big', 20_000);
const BARE_DECISIONS = arg('bare', 200_000);
const FULL_SCAN_DECISIONS = 1_000;
const REBUILDS = 40;
const LIVE_MAX = 5_000;

const REGIONS = ['eu-west', 'eu-central', 'us-east', 'ap-south'];
const TENANTS = Array.from({ length: 50 }, (_, k) => `tenant-${k}`);
const SPECS: Resources[] = [
  { vcpuMillicores: 1000, memoryMib: 2048, storageGib: 16, devices: 1 },
  { vcpuMillicores: 2000, memoryMib: 4096, storageGib: 32, devices: 1 },
  { vcpuMillicores: 4000, memoryMib: 8192, storageGib: 64, devices: 1 },
  { vcpuMillicores: 8000, memoryMib: 16_384, storageGib: 128, devices: 1 },
];
const ARM: ImageRequirements = { id: 'android-14-arm', arch: ['arm64'], requiredLabels: { binder: 'true' } };
const X86: ImageRequirements = { id: 'android-14-x86', arch: ['amd64'] };

function prng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Host rows as the store returns them: 30% large, half overcommitted, 5% not ready, filled 0-90%. */
function fleet(n: number): { rows: SchedulingRow[]; tenants: Map<string, Map<string, number>> } {
  const random = prng(42);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(random() * xs.length)] as T;
  const tenants = new Map(TENANTS.map((t) => [t, new Map<string, number>()]));
  const rows = Array.from({ length: n }, (_, k): SchedulingRow => {
    const id = `host-${String(k).padStart(6, '0')}`;
    const large = random() < 0.3;
    const cpu = large ? 128_000 : 64_000;
    const memory = large ? 512 * 1024 : 256 * 1024;
    const storage = large ? 8000 : 4000;
    const slots = large ? 96 : 48;
    const [ocCpu, ocMemory] = random() < 0.5 ? [2, 1.25] : [1, 1];
    const r = random();
    const fill = random() * 0.9;
    const devices = Math.floor(slots * fill);
    for (let d = 0; d < Math.min(devices, 5); d++) {
      const counts = tenants.get(pick(TENANTS));
      counts?.set(id, (counts.get(id) ?? 0) + 1);
    }
    return {
      id,
      name: `rack${Math.floor(k / 40)}-u${k % 40}`,
      arch: random() < 0.8 ? 'arm64' : 'x86_64',
      labels: { region: pick(REGIONS), binder: 'true', ...(random() < 0.1 ? { gpu: 'true' } : {}) },
      connection: r < 0.01 ? 'unreachable' : 'ready',
      gateway_replica: r < 0.02 ? null : 'replica-a',
      cordoned: r >= 0.02 && r < 0.04,
      drain_state: r >= 0.04 && r < 0.05 ? 'in_progress' : null,
      capacity_vcpu_millicores: cpu,
      capacity_memory_mib: memory,
      capacity_storage_gib: storage,
      capacity_devices: slots,
      overcommit_cpu: ocCpu ?? 1,
      overcommit_memory: ocMemory ?? 1,
      allocated_vcpu_millicores: Math.floor(cpu * (ocCpu ?? 1) * fill),
      allocated_memory_mib: Math.floor(memory * (ocMemory ?? 1) * fill),
      allocated_storage_gib: Math.floor(storage * fill),
      allocated_devices: devices,
      change_seq: k + 1,
    };
  });
  return { rows, tenants };
}

interface Create {
  readonly ask: Ask;
  readonly tenantId: string;
  readonly seed: string;
}

/** A mix of specs and shapes: bin-pack, regional selectors, spread, tenant spread, gpu, amd64. */
function creates(count: number): Create[] {
  return Array.from({ length: count }, (_, k): Create => {
    const tenantId = TENANTS[k % TENANTS.length] ?? 'tenant-0';
    const base: Ask = {
      resources: SPECS[(k >> 3) % SPECS.length] ?? (SPECS[0] as Resources),
      image: ARM,
      nodeSelector: {},
      strategy: 'binpack',
      spreadTenant: false,
    };
    const shapes: Ask[] = [
      base,
      base,
      { ...base, nodeSelector: { region: REGIONS[k % 4] ?? 'eu-west' } },
      { ...base, strategy: 'spread' },
      { ...base, spreadTenant: true },
      { ...base, nodeSelector: { gpu: 'true' } },
      { ...base, image: X86 },
      { ...base, strategy: 'spread', spreadTenant: true, nodeSelector: { region: 'eu-west' } },
    ];
    return { ask: shapes[k % shapes.length] ?? base, tenantId, seed: `dev-${k}` };
  });
}

function requestOf(c: Create): PlacementRequest {
  return {
    count: 1,
    resources: c.ask.resources,
    image: c.ask.image,
    tenantId: c.tenantId,
    nodeSelector: c.ask.nodeSelector,
    strategy: c.ask.strategy,
    spreadTenant: c.ask.spreadTenant,
    seed: c.seed,
  };
}

/** The row as the ledger write returns it: allocation moved by `delta`, the next change number. */
function withDelta(row: SchedulingRow, delta: Resources, sign: 1 | -1, seq: number): SchedulingRow {
  return {
    ...row,
    allocated_vcpu_millicores: row.allocated_vcpu_millicores + sign * delta.vcpuMillicores,
    allocated_memory_mib: row.allocated_memory_mib + sign * delta.memoryMib,
    allocated_storage_gib: row.allocated_storage_gib + sign * delta.storageGib,
    allocated_devices: row.allocated_devices + sign * delta.devices,
    change_seq: seq,
  };
}

interface Timing {
  n: number;
  perSecond: number;
  p50: number;
  p99: number;
  max: number;
  meanMs: number;
}

function timing(lat: Float64Array, n: number): Timing {
  const used = lat.subarray(0, n).sort();
  const total = used.reduce((a, b) => a + b, 0);
  const at = (q: number) => used[Math.min(n - 1, Math.floor(q * n))] ?? Number.NaN;
  return { n, perSecond: n / (total / 1e3), p50: at(0.5), p99: at(0.99), max: at(1), meanMs: total / n };
}

const now = (): number => Number(process.hrtime.bigint()) / 1e6;
const gc = () => (globalThis as { gc?: () => void }).gc?.();
const fmt = (x: number, digits = 3): string => x.toFixed(digits);
const int = (x: number): string => Math.round(x).toLocaleString('en-US');

interface ApiRun {
  decisions: Timing;
  releases: Timing;
  foreign: Timing;
  refused: number;
  conflicts: number;
  loadMs: number;
  reindexes: number;
}

/** The API path on a fleet of `n` hosts; see the file comment. */
function apiPath(n: number, decisions: number): ApiRun {
  const { rows, tenants } = fleet(n);
  const t0 = now();
  const view = new FleetView(rows);
  for (const [tenant, counts] of tenants) view.setTenantCounts(tenant, counts, 0);
  const loadMs = now() - t0;
  const random = prng(7);
  let seq = n + 1;
  const work = creates(decisions);
  const live: { hostId: string; resources: Resources }[] = [];
  const lat = new Float64Array(decisions);
  const releaseLat = new Float64Array(decisions);
  const foreignLat = new Float64Array(decisions);
  let releases = 0;
  let foreign = 0;
  let refused = 0;
  let conflicts = 0;
  // Warm-up on a copy of the work, so the JIT has seen every shape before the clock runs.
  for (const c of work.slice(0, 2000)) {
    const placer = new Placer(view);
    try {
      placer.place([{ ask: c.ask, label: 'requests[0]' }], c.tenantId, c.seed);
    } catch {}
    placer.release();
  }
  gc();
  for (let k = 0; k < decisions; k++) {
    const c = work[k] as Create;
    const asks = [{ ask: c.ask, label: 'requests[0]' }];
    const start = now();
    // The applier's round: place on the view (held), re-check the rows, apply the rows written.
    const placer = new Placer(view);
    let hostOf: string[] | undefined;
    try {
      hostOf = placer.place(asks, c.tenantId, c.seed);
    } catch (error) {
      if (!(error instanceof ResourceExhaustedError)) throw error;
      refused++;
    }
    if (hostOf) {
      const locked = hostOf.map((id) => view.row(id) as SchedulingRow);
      if (recheck(locked, hostOf, asks, placer.usedDisconnected)) {
        placer.release();
        conflicts++;
      } else {
        const written = [...arriving(hostOf, asks)].map(([id, d]) =>
          withDelta(view.row(id) as SchedulingRow, d, 1, seq++),
        );
        view.apply(written, placer.written());
        live.push({ hostId: hostOf[0] ?? '', resources: c.ask.resources });
      }
    }
    lat[k] = now() - start;
    // A deletion's rows, settled by the planner.
    if (live.length > LIVE_MAX) {
      const gone = live.shift();
      if (gone) {
        const t = now();
        view.apply([withDelta(view.row(gone.hostId) as SchedulingRow, gone.resources, -1, seq++)]);
        releaseLat[releases++] = now() - t;
      }
    }
    // Another replica placed a device: its row, re-read after the notice.
    if (k % 4 === 3) {
      const host = rows[Math.floor(random() * n)] as SchedulingRow;
      const row = view.row(host.id) as SchedulingRow;
      if (row.allocated_devices < row.capacity_devices) {
        const t = now();
        view.apply([withDelta(row, SPECS[0] as Resources, 1, seq++)]);
        foreignLat[foreign++] = now() - t;
      }
    }
  }
  return {
    decisions: timing(lat, decisions),
    releases: timing(releaseLat, releases),
    foreign: timing(foreignLat, foreign),
    refused,
    conflicts,
    loadMs,
    reindexes: view.reindexes,
  };
}

/** place() on one snapshot, never committed: the scheduler alone. */
function bare(snapshot: Snapshot, requests: readonly PlacementRequest[], n: number): Timing {
  for (let k = 0; k < 5000; k++) place(snapshot, requests[k % requests.length] as PlacementRequest);
  gc();
  const lat = new Float64Array(n);
  for (let k = 0; k < n; k++) {
    const r = requests[k % requests.length] as PlacementRequest;
    const start = now();
    place(snapshot, r);
    lat[k] = now() - start;
  }
  return timing(lat, n);
}

// --- 10,000 hosts: the API path -----------------------------------------------------------------
console.log(
  `scheduler bench: single thread; fleets of ${int(HOSTS)} and ${int(BIG)} hosts (80% arm64, 4 regions, 10% gpu, 5% not ready, filled 0-90%)`,
);
const api = apiPath(HOSTS, API_DECISIONS);
const line = (label: string, t: Timing, extra = '') =>
  console.log(
    `  ${label.padEnd(34)} ${int(t.perSecond).padStart(9)}/s  p50 ${fmt(t.p50)} ms  p99 ${fmt(t.p99)} ms  max ${fmt(t.max)} ms${extra}`,
  );
console.log(`${int(HOSTS)} hosts (view read in ${fmt(api.loadMs, 1)} ms, once):`);
line(
  'API path: place, re-check, apply',
  api.decisions,
  `  (${int(api.decisions.n)} creates, ${api.refused} fit nowhere, ${api.conflicts} re-check conflicts)`,
);
line('  a deletion’s rows applied', api.releases);
line('  another replica’s row applied', api.foreign, `  (re-indexed ${api.reindexes} times)`);

// --- 10,000 hosts: the scheduler alone and the baselines ----------------------------------------
const { rows } = fleet(HOSTS);
const inputs = rows.map((r) => toHostInput(r)).filter((h) => h !== undefined);
const snapshot = buildSnapshot(inputs);
const requests = creates(1000).map(requestOf);
const bareRun = bare(snapshot, requests, BARE_DECISIONS);
line('bare place(), never committed', bareRun);
// The same algorithm without the index: no block is ever skipped and every feasible host scored.
const noIndex: Snapshot = {
  ...snapshot,
  blockFree: {
    cpu: new Float64Array(snapshot.blockFree.cpu.length).fill(Number.POSITIVE_INFINITY),
    memory: new Float64Array(snapshot.blockFree.cpu.length).fill(Number.POSITIVE_INFINITY),
    storage: new Float64Array(snapshot.blockFree.cpu.length).fill(Number.POSITIVE_INFINITY),
    slots: new Float64Array(snapshot.blockFree.cpu.length).fill(Number.POSITIVE_INFINITY),
  },
  blockLabels: new Uint32Array(snapshot.blockLabels.length).fill(0xffffffff),
};
const fullScan = bare(
  noIndex,
  requests.map((r) => ({ ...r, candidateLimit: HOSTS })),
  FULL_SCAN_DECISIONS,
);
line('baseline: full scan, no index', fullScan);
gc();
const rebuildLat = new Float64Array(REBUILDS);
for (let k = 0; k < REBUILDS; k++) {
  const start = now();
  place(buildSnapshot(inputs), requests[k % requests.length] as PlacementRequest);
  rebuildLat[k] = now() - start;
}
const rebuild = timing(rebuildLat, REBUILDS);
line('baseline: snapshot rebuilt per create', rebuild);

// --- 100,000 hosts: the API path ----------------------------------------------------------------
gc();
const big = apiPath(BIG, API_DECISIONS_BIG);
console.log(`${int(BIG)} hosts (view read in ${fmt(big.loadMs, 1)} ms, once):`);
line(
  'API path: place, re-check, apply',
  big.decisions,
  `  (${int(big.decisions.n)} creates, ${big.refused} fit nowhere, ${big.conflicts} re-check conflicts)`,
);
line('  a deletion’s rows applied', big.releases);
line('  another replica’s row applied', big.foreign, `  (re-indexed ${big.reindexes} times)`);
console.log(
  `API path at ${int(HOSTS)} hosts: ${fmt(api.decisions.meanMs * 1000, 1)} µs of CPU per create; ` +
    `${fmt(api.decisions.perSecond / rebuild.perSecond, 0)}x the rebuild-per-create path, ` +
    `bare place() (the decision alone, on a fleet that never changes) ${fmt(bareRun.perSecond / api.decisions.perSecond, 1)}x as fast, ` +
    `${fmt(api.decisions.perSecond / fullScan.perSecond, 0)}x the full scan`,
);

console.log(
  JSON.stringify({
    bench: 'scheduler',
    hosts: HOSTS,
    api_path_decisions_per_s: Math.round(api.decisions.perSecond),
    api_path_p99_ms: Number(fmt(api.decisions.p99, 4)),
    api_path_p99_ms_100k: Number(fmt(big.decisions.p99, 4)),
    bare_decisions_per_s: Math.round(bareRun.perSecond),
    fullscan_decisions_per_s: Math.round(fullScan.perSecond),
    rebuild_decisions_per_s: Math.round(rebuild.perSecond),
  }),
);
