// Scheduler throughput on a 10,000-host fleet: single-device decisions, 100-device batches, and
// the same decisions by a naive scheduler that filters and scores every host, as the baseline.
// Node runs this on one thread; the figures are for one core. Prints figures, never asserts a time.
import {
  buildSnapshot,
  type HostInput,
  type Placement,
  type PlacementRequest,
  place,
  type Snapshot,
  withAssignments,
} from '../control-plane/src/scheduler/index.js';

const HOSTS = 10_000;
const SINGLE_DECISIONS = Number(process.env.DECISIONS ?? 200_000);
const BATCHES = 2_000;
const BASELINE_DECISIONS = 2_000;
const FILL_DEVICES = 20_000;

const REGIONS = ['eu-west', 'eu-central', 'us-east', 'ap-south'];
const TENANTS = Array.from({ length: 50 }, (_, k) => `tenant-${k}`);

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

function fleet(allocate: boolean): HostInput[] {
  const random = prng(42);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(random() * xs.length)]!;
  return Array.from({ length: HOSTS }, (_, k): HostInput => {
    const large = random() < 0.3;
    const capacity = large
      ? { vcpuMillicores: 128_000, memoryMib: 512 * 1024, storageGib: 8000, devices: 96 }
      : { vcpuMillicores: 64_000, memoryMib: 256 * 1024, storageGib: 4000, devices: 48 };
    const overcommit = random() < 0.5 ? { cpu: 2, memory: 1.25 } : { cpu: 1, memory: 1 };
    const r = random();
    const state = r < 0.03 ? 'cordoned' : r < 0.04 ? 'draining' : r < 0.05 ? 'unreachable' : 'ready';
    const fill = allocate ? random() * 0.95 : 0;
    const devices = Math.floor(capacity.devices * fill);
    const tenantDevices: Record<string, number> = {};
    for (let d = 0; d < Math.min(devices, 5); d++) {
      const t = pick(TENANTS);
      tenantDevices[t] = (tenantDevices[t] ?? 0) + 1;
    }
    return {
      id: `host-${String(k).padStart(5, '0')}`,
      name: `rack${Math.floor(k / 40)}-u${k % 40}`,
      arch: random() < 0.8 ? 'arm64' : 'amd64',
      state,
      labels: { region: pick(REGIONS), binder: 'true', ...(random() < 0.1 ? { gpu: 'true' } : {}) },
      capacity,
      overcommit,
      allocated: {
        vcpuMillicores: Math.floor(capacity.vcpuMillicores * overcommit.cpu * fill),
        memoryMib: Math.floor(capacity.memoryMib * overcommit.memory * fill),
        storageGib: Math.floor(capacity.storageGib * fill),
        devices,
      },
      tenantDevices,
    };
  });
}

const ASK = { vcpuMillicores: 4000, memoryMib: 8192, storageGib: 64, devices: 1 };
const ARM = { id: 'android-14-arm', arch: ['arm64' as const], requiredLabels: { binder: 'true' } };
const X86 = { id: 'android-14-x86', arch: ['amd64' as const] };

/** A mix of shapes: default bin-pack, regional selectors, spread, tenant spread, gpu, amd64. */
function requests(count: number, batch: number): PlacementRequest[] {
  const out: PlacementRequest[] = [];
  for (let k = 0; k < count; k++) {
    const tenantId = TENANTS[k % TENANTS.length]!;
    const base = { count: batch, resources: ASK, image: ARM, tenantId };
    switch (k % 8) {
      case 0:
      case 1:
        out.push(base);
        break;
      case 2:
        out.push({ ...base, nodeSelector: { region: REGIONS[k % 4]! } });
        break;
      case 3:
        out.push({ ...base, strategy: 'spread', seed: `req-${k}` });
        break;
      case 4:
        out.push({ ...base, spreadTenant: true });
        break;
      case 5:
        out.push({ ...base, nodeSelector: { gpu: 'true' } });
        break;
      case 6:
        out.push({ ...base, image: X86 });
        break;
      default:
        out.push({
          ...base,
          strategy: 'spread',
          spreadTenant: true,
          nodeSelector: { region: 'eu-west' },
          seed: `req-${k}`,
        });
    }
  }
  return out;
}

/** What one writes first: filter and score every host object, keep the best. Same rules, same scores. */
function naivePlace(hosts: readonly HostInput[], r: PlacementRequest): string | null {
  let best: string | null = null;
  let bestScore = Number.NEGATIVE_INFINITY;
  for (const h of hosts) {
    if (h.state !== 'ready') continue;
    if (r.image.arch && r.image.arch.length > 0 && !r.image.arch.includes(h.arch)) continue;
    const labels = h.labels ?? {};
    if (!Object.entries(r.image.requiredLabels ?? {}).every(([k, v]) => labels[k] === v)) continue;
    if (!Object.entries(r.nodeSelector ?? {}).every(([k, v]) => labels[k] === v)) continue;
    const oc = h.overcommit ?? { cpu: 1, memory: 1 };
    const a = h.allocated ?? { vcpuMillicores: 0, memoryMib: 0, storageGib: 0, devices: 0 };
    const cpuCap = h.capacity.vcpuMillicores * oc.cpu;
    const memCap = h.capacity.memoryMib * oc.memory;
    if (a.vcpuMillicores + r.resources.vcpuMillicores > cpuCap) continue;
    if (a.memoryMib + r.resources.memoryMib > memCap) continue;
    if (a.storageGib + r.resources.storageGib > h.capacity.storageGib) continue;
    if (a.devices + 1 > h.capacity.devices) continue;
    const util =
      (Math.min(1, (a.vcpuMillicores + r.resources.vcpuMillicores) / cpuCap) +
        Math.min(1, (a.memoryMib + r.resources.memoryMib) / memCap)) /
      2;
    let score = r.strategy === 'spread' ? 1 - util : util;
    if (r.spreadTenant) score += 1 / (1 + (h.tenantDevices?.[r.tenantId] ?? 0));
    if (score > bestScore || (score === bestScore && best !== null && h.id < best)) {
      best = h.id;
      bestScore = score;
    }
  }
  return best;
}

interface Run {
  perSecond: number;
  p50: number;
  p99: number;
  max: number;
}

/** Times each call with hrtime; returns calls per second and latency percentiles in ms. */
function measure(n: number, call: (k: number) => void): Run {
  const lat = new Float64Array(n);
  let total = 0n;
  for (let k = 0; k < n; k++) {
    const t0 = process.hrtime.bigint();
    call(k);
    const dt = process.hrtime.bigint() - t0;
    total += dt;
    lat[k] = Number(dt) / 1e6;
  }
  lat.sort();
  const at = (q: number): number => lat[Math.min(n - 1, Math.floor(q * n))]!;
  return { perSecond: n / (Number(total) / 1e9), p50: at(0.5), p99: at(0.99), max: at(1) };
}

function gc(): void {
  (globalThis as { gc?: () => void }).gc?.();
}

const fmt = (x: number, digits = 3): string => x.toFixed(digits);
const int = (x: number): string => Math.round(x).toLocaleString('en-US');

// --- fleet ---------------------------------------------------------------------------------
const hosts = fleet(true);
const t = process.hrtime.bigint();
const snapshot: Snapshot = buildSnapshot(hosts);
const buildMs = Number(process.hrtime.bigint() - t) / 1e6;
const ready = hosts.filter((h) => h.state === 'ready').length;
console.log(`scheduler bench: ${HOSTS} hosts (${ready} ready, 80% arm64, 4 regions, 10% gpu), single thread`);
console.log(`  snapshot build              ${fmt(buildMs, 1)} ms`);

// --- single-device decisions ---------------------------------------------------------------
const singles = requests(1000, 1);
let failures = 0;
let evaluated = 0;
let skipped = 0;
const sink: Placement[] = [];
for (let k = 0; k < 5000; k++) place(snapshot, singles[k % singles.length]!); // warm-up
gc();
const single = measure(SINGLE_DECISIONS, (k) => {
  const p = place(snapshot, singles[k % singles.length]!);
  if (!p.ok) failures++;
  evaluated += p.metrics.hostsEvaluated;
  skipped += p.metrics.hostsSkipped;
  if (k % 50_000 === 0) sink.push(p);
});
console.log(
  `  single-device decisions     ${int(single.perSecond)}/s  p50 ${fmt(single.p50)} ms  p99 ${fmt(single.p99)} ms  max ${fmt(single.max)} ms` +
    `  (${int(SINGLE_DECISIONS)} decisions, ${failures} unplaceable, ${fmt(evaluated / SINGLE_DECISIONS, 1)} hosts evaluated and ${fmt(skipped / SINGLE_DECISIONS, 1)} skipped per decision)`,
);

// --- 100-device batches --------------------------------------------------------------------
const batches = requests(200, 100);
gc();
let batchFailures = 0;
const batch = measure(BATCHES, (k) => {
  const p = place(snapshot, batches[k % batches.length]!);
  if (!p.ok) batchFailures++;
});
console.log(
  `  100-device batches          ${int(batch.perSecond)}/s (${int(batch.perSecond * 100)} devices/s)  p50 ${fmt(batch.p50)} ms  p99 ${fmt(batch.p99)} ms  (${batchFailures} of ${BATCHES} found no plan)`,
);

// --- baseline: naive full scan -------------------------------------------------------------
for (let k = 0; k < 200; k++) naivePlace(hosts, singles[k % singles.length]!);
gc();
const picks: (string | null)[] = [];
const baseline = measure(BASELINE_DECISIONS, (k) => {
  picks[k] = naivePlace(hosts, singles[k % singles.length]!);
});
const ratio = single.perSecond / baseline.perSecond;
console.log(
  `  baseline (score every host) ${int(baseline.perSecond)}/s  p50 ${fmt(baseline.p50)} ms  p99 ${fmt(baseline.p99)} ms  -> ${fmt(ratio, 1)}x faster`,
);

// --- placement quality: fill an empty fleet ------------------------------------------------
// Bin-pack's candidate limit trades global optimality for speed; what matters is that a filling
// fleet still uses few hosts. Place one device at a time and commit it, as the plan applier would.
function fill(strategy: 'binpack' | 'spread'): {
  hostsUsed: number;
  partial: number;
  mostOnOneHost: number;
  perSecond: number;
  p99: number;
} {
  let s = buildSnapshot(fleet(false));
  const r: PlacementRequest = { count: 1, resources: ASK, image: ARM, tenantId: 'tenant-0', strategy };
  const placements = new Map<string, number>();
  const lat = new Float64Array(FILL_DEVICES);
  for (let k = 0; k < FILL_DEVICES; k++) {
    const req = strategy === 'spread' ? { ...r, seed: `dev-${k}` } : r;
    const t0 = process.hrtime.bigint();
    const p = place(s, req);
    lat[k] = Number(process.hrtime.bigint() - t0) / 1e6;
    if (!p.ok) throw new Error(p.message);
    s = withAssignments(s, req, p.assignments);
    const id = p.assignments[0]!.hostId;
    placements.set(id, (placements.get(id) ?? 0) + 1);
  }
  const total = lat.reduce((a, b) => a + b, 0);
  lat.sort();
  // Used hosts that could still take one more device: fragmentation bin-pack should keep near zero.
  let partial = 0;
  for (const id of placements.keys()) {
    const i = s.indexById.get(id)!;
    const free = (c: keyof Snapshot['capacity']): number => s.capacity[c][i]! - s.allocated[c][i]!;
    if (
      free('cpu') >= ASK.vcpuMillicores &&
      free('memory') >= ASK.memoryMib &&
      free('storage') >= ASK.storageGib &&
      free('slots') >= 1
    ) {
      partial++;
    }
  }
  return {
    hostsUsed: placements.size,
    partial,
    mostOnOneHost: Math.max(...placements.values()),
    perSecond: FILL_DEVICES / (total / 1e3),
    p99: lat[Math.floor(0.99 * FILL_DEVICES)]!,
  };
}

/** Fewest hosts that can hold FILL_DEVICES of ASK: take eligible hosts largest first. */
function fewestHosts(): number {
  const fits = fleet(false)
    .filter((h) => h.state === 'ready' && h.arch === 'arm64')
    .map((h) => {
      const oc = h.overcommit ?? { cpu: 1, memory: 1 };
      return Math.min(
        Math.floor((h.capacity.vcpuMillicores * oc.cpu) / ASK.vcpuMillicores),
        Math.floor((h.capacity.memoryMib * oc.memory) / ASK.memoryMib),
        Math.floor(h.capacity.storageGib / ASK.storageGib),
        h.capacity.devices,
      );
    })
    .sort((a, b) => b - a);
  let placed = 0;
  let used = 0;
  while (placed < FILL_DEVICES && used < fits.length) placed += fits[used++]!;
  return used;
}

const packed = fill('binpack');
const spread = fill('spread');
console.log(
  `  fill ${int(FILL_DEVICES)} devices, bin-pack  ${packed.hostsUsed} hosts used, ${packed.partial} of them not full (fewest possible, largest first: ${fewestHosts()})  ${int(packed.perSecond)} decisions/s  p99 ${fmt(packed.p99)} ms`,
);
console.log(
  `  fill ${int(FILL_DEVICES)} devices, spread    ${spread.hostsUsed} hosts used, at most ${spread.mostOnOneHost} devices on one  ${int(spread.perSecond)} decisions/s  p99 ${fmt(spread.p99)} ms`,
);

console.log(
  JSON.stringify({
    bench: 'scheduler',
    hosts: HOSTS,
    decisions_per_s: Math.round(single.perSecond),
    p50_ms: Number(fmt(single.p50, 4)),
    p99_ms: Number(fmt(single.p99, 4)),
    baseline_decisions_per_s: Math.round(baseline.perSecond),
    ratio: Number(fmt(ratio, 1)),
  }),
);
