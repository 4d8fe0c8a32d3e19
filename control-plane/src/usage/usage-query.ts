// Usage sums over the rollups: any range on the 15-minute grid, grouped by tenant, device, host,
// image, label or the whole selection, in hour/day/month buckets of any zone. Quantities are exact
// integers (bigint); the API and billing read them from here.
import { type Kysely, type RawBuilder, sql, type Transaction } from 'kysely';
import type { Database } from '../store/schema.js';
import { MONTH_SLOTS, monthOf, SLOT_MS } from './rollups.js';
import { type BucketUnit, bucketBounds, parseTimeZone, type Run, runsOf } from './time-zone.js';

export type UsageGroupBy = 'tenant' | 'device' | 'host' | 'image' | 'label' | 'subtree';

/** Exact quantities of one row. */
export interface UsageQuantities {
  /** Device-seconds running (BOOTING or RUNNING). */
  runningSeconds: bigint;
  /** Device-seconds existing but not running. */
  stoppedSeconds: bigint;
  /** vCPU millicore-seconds over running seconds. */
  vcpuMillicoreSeconds: bigint;
  /** Memory MiB-seconds over running seconds. */
  memoryMibSeconds: bigint;
  /** Storage GiB-seconds over every second a device existed. */
  storageGibSeconds: bigint;
  /** Seconds stream viewer sessions were open. */
  viewerSeconds: bigint;
  /** Bytes sent to the internet, as the agents metered them (0 for hosts that meter none). */
  egressBytes: bigint;
  /** Distinct devices with samples in the row. */
  deviceCount: number;
}

export interface UsageRow extends UsageQuantities {
  /** Set when grouped by tenant or device. */
  tenantId: string;
  /** Set when grouped by device. */
  deviceId: string;
  /** Set when grouped by host. */
  hostId: string;
  /** Set when grouped by image (the device's image now). */
  imageId: string;
  /** Set when grouped by label: the device's value of the label now, '' without it. */
  labelValue: string;
  /** The bucket: clipped to the range. */
  start: Date;
  end: Date;
}

export interface UsageSelection {
  /** The tenants whose usage counts (already scoped to what the caller may see). */
  tenantIds: readonly string[];
  /** On the 15-minute grid. */
  start: Date;
  end: Date;
  /** Default 'tenant'. */
  groupBy?: UsageGroupBy | undefined;
  /** Default 'range' (one bucket). */
  bucket?: BucketUnit | undefined;
  /** IANA name or "+05:30"; default UTC. */
  timeZone?: string | undefined;
  /** For groupBy 'label'. */
  labelKey?: string | undefined;
  /** Only this device. */
  deviceId?: string | undefined;
  /** Open stream sessions count up to this instant (default now). */
  now?: Date | undefined;
}

type Db = Kysely<Database>;

/** A prepared selection: bucket bounds and the rollup runs that tile them. */
interface Plan {
  sel: UsageSelection;
  groupBy: UsageGroupBy;
  bounds: number[];
  runs: Run[];
  now: Date;
}

export function planUsage(sel: UsageSelection): Plan {
  const zone = parseTimeZone(sel.timeZone ?? '');
  const bounds = bucketBounds(zone, sel.start.getTime(), sel.end.getTime(), sel.bucket ?? 'range');
  return { sel, groupBy: sel.groupBy ?? 'tenant', bounds, runs: runsOf(bounds), now: sel.now ?? new Date() };
}

/**
 * Every row of the selection, ordered by group then bucket, with exact quantities. What billing
 * calls: `usageTotals(db, { tenantIds, start, end, groupBy: 'tenant' })` gives one row per tenant
 * with usage in [start, end). The caller scopes tenantIds.
 */
export async function usageTotals(db: Db, sel: UsageSelection): Promise<UsageRow[]> {
  return rowsFor(db, planUsage(sel), undefined);
}

/** The sum over the whole selection and range (one row; device_count counts distinct devices). */
export async function usageSum(db: Db, sel: UsageSelection): Promise<UsageRow> {
  const plan = planUsage({ ...sel, groupBy: 'subtree', bucket: 'range' });
  const [row] = await rowsFor(db, plan, undefined);
  return row ?? emptyRow(sel.start, sel.end);
}

/** A position in the row order: the row's group key and bucket index. */
export interface UsageCursor {
  key: string[];
  bucket: number;
}

/** Up to `limit` rows after `after`, ordered by group then bucket; fetches only the groups needed. */
export async function usagePage(
  db: Db,
  plan: Plan,
  after: UsageCursor | undefined,
  limit: number,
): Promise<{ rows: UsageRow[]; cursors: UsageCursor[] }> {
  const candidates = await candidateKeys(db, plan);
  const out: { row: UsageRow; cursor: UsageCursor }[] = [];
  const isAfter = (c: UsageCursor) => !after || compareCursor(c, after) > 0;
  const nBuckets = plan.bounds.length - 1;
  if (candidates === undefined) {
    for (const r of await rowsWithCursors(db, plan, undefined)) if (isAfter(r.cursor)) out.push(r);
  } else {
    const todo = after ? candidates.filter((k) => compareKey(k, after.key) >= 0) : candidates;
    let chunk = Math.max(1, Math.ceil(limit / nBuckets));
    for (let i = 0; i < todo.length && out.length < limit; ) {
      const keys = todo.slice(i, i + chunk);
      i += chunk;
      for (const r of await rowsWithCursors(db, plan, keys)) if (isAfter(r.cursor)) out.push(r);
      chunk = Math.min(chunk * 2, 1000);
    }
  }
  const page = out.slice(0, limit);
  return { rows: page.map((r) => r.row), cursors: page.map((r) => r.cursor) };
}

async function rowsWithCursors(db: Db, plan: Plan, keys: string[][] | undefined) {
  const rows = await rowsFor(db, plan, keys);
  return rows.map((row) => ({
    row,
    cursor: { key: keyOf(plan.groupBy, row), bucket: plan.bounds.indexOf(row.start.getTime()) },
  }));
}

/** The groups to walk in order, when they are known without summing (tenants, devices). */
async function candidateKeys(db: Db, plan: Plan): Promise<string[][] | undefined> {
  const { sel } = plan;
  if (plan.groupBy === 'tenant') return [...sel.tenantIds].sort().map((t) => [t]);
  if (plan.groupBy !== 'device' || sel.tenantIds.length === 0) return undefined;
  let query = db
    .selectFrom('device')
    .select(['tenant_id', 'id'])
    .where('tenant_id', 'in', [...sel.tenantIds]);
  if (sel.deviceId) query = query.where('id', '=', sel.deviceId);
  const devices = await query.execute();
  return devices.map((d) => [d.tenant_id, d.id]).sort(compareKey);
}

function keyOf(groupBy: UsageGroupBy, row: UsageRow): string[] {
  switch (groupBy) {
    case 'tenant':
      return [row.tenantId];
    case 'device':
      return [row.tenantId, row.deviceId];
    case 'host':
      return [row.hostId];
    case 'image':
      return [row.imageId];
    case 'label':
      return [row.labelValue];
    case 'subtree':
      return [];
  }
}

export function compareKey(a: readonly string[], b: readonly string[]): number {
  for (let i = 0; i < Math.max(a.length, b.length); i++) {
    const x = a[i] ?? '';
    const y = b[i] ?? '';
    if (x !== y) return x < y ? -1 : 1;
  }
  return 0;
}

function compareCursor(a: UsageCursor, b: UsageCursor): number {
  return compareKey(a.key, b.key) || a.bucket - b.bucket;
}

function emptyRow(start: Date, end: Date): UsageRow {
  return {
    tenantId: '',
    deviceId: '',
    hostId: '',
    imageId: '',
    labelValue: '',
    start,
    end,
    runningSeconds: 0n,
    stoppedSeconds: 0n,
    vcpuMillicoreSeconds: 0n,
    memoryMibSeconds: 0n,
    storageGibSeconds: 0n,
    viewerSeconds: 0n,
    egressBytes: 0n,
    deviceCount: 0,
  };
}

const iso = (ms: number) => new Date(ms).toISOString();

/** Key columns of a grouping over a table aliased r (rollups or stream sessions) and devices d. */
function keyColumns(plan: Plan): { select: RawBuilder<unknown>[]; needsDevice: boolean } {
  const labelKey = plan.sel.labelKey ?? '';
  switch (plan.groupBy) {
    case 'tenant':
      return { select: [sql`r.tenant_id`], needsDevice: false };
    case 'device':
      return { select: [sql`r.tenant_id`, sql`r.device_id`], needsDevice: false };
    case 'host':
      return { select: [sql`r.host_id`], needsDevice: false };
    case 'image':
      return { select: [sql`d.image_id`], needsDevice: true };
    case 'label':
      return { select: [sql`coalesce(d.labels ->> ${labelKey}, '')`], needsDevice: true };
    case 'subtree':
      return { select: [], needsDevice: false };
  }
}

/** Filters of the selection on r (and keys to restrict to, for the tenant and device groupings). */
function filters(plan: Plan, keys: string[][] | undefined): RawBuilder<unknown> {
  const tenants = keys && plan.groupBy === 'tenant' ? keys.map((k) => k[0] ?? '') : [...plan.sel.tenantIds];
  const parts: RawBuilder<unknown>[] = [sql`r.tenant_id = any(${tenants}::text[])`];
  if (plan.sel.deviceId) parts.push(sql`r.device_id = ${plan.sel.deviceId}`);
  if (keys && plan.groupBy === 'device')
    parts.push(sql`r.device_id = any(${keys.map((k) => k[1] ?? '')}::text[])`);
  return sql.join(parts, sql` and `);
}

interface SumRow {
  k0?: string;
  k1?: string;
  b: number;
  running_s?: string;
  stopped_s?: string;
  vcpu_mcs?: string;
  memory_mibs?: string;
  storage_gibs?: string;
  egress_bytes?: string;
  devices?: number | string;
  viewer_s?: string;
}

function keyAliases(select: RawBuilder<unknown>[]) {
  return select.map((c, i) => sql`${c} as ${sql.ref(`k${i}`)}`);
}

/** Up to this many buckets, device counts come from usage_device_month (one AND per bucket and row). */
const MAX_MASK_BUCKETS = 62;

/**
 * Distinct devices per group and bucket from usage_device_month: a device counts in a bucket when
 * any of its 15-minute slots in the bucket is set. Each bucket is cut at UTC month edges into
 * (month, mask) pieces; a device with usage in two pieces of a bucket is counted once.
 */
function deviceCountsFromMonths(
  plan: Plan,
  groupCount: number,
  head: RawBuilder<unknown>,
  groupBy: RawBuilder<unknown>,
  where: RawBuilder<unknown>,
) {
  const pieces: { b: number; month: number; mask: string }[] = [];
  const { bounds } = plan;
  for (let i = 1; i < bounds.length; i++) {
    const lo = bounds[i - 1] as number;
    const hi = bounds[i] as number;
    for (let month = monthOf(lo); month < hi; month = monthOf(month + 32 * DAY_MS)) {
      const next = monthOf(month + 32 * DAY_MS);
      const from = Math.max(0, (lo - month) / SLOT_MS);
      const to = (Math.min(hi, next) - month) / SLOT_MS;
      const mask = new Uint8Array(MONTH_SLOTS).fill(48);
      mask.fill(49, from, to);
      pieces.push({ b: i, month, mask: decoder.decode(mask) });
    }
  }
  const zero = '0'.repeat(MONTH_SLOTS);
  const bits = sql.lit(MONTH_SLOTS);
  // The masks are cast to bit once, in the array (a cast per joined row parsed 2,976 characters
  // each time); distinct devices by hashing (group by) rather than sorting each group.
  const keys = Array.from({ length: groupCount }, (_, i) => sql.ref(`k${i}`));
  const outer = keys.length > 0 ? sql`${sql.join(keys)},` : sql``;
  return sql<SumRow>`select ${outer} b, count(*) as devices from (
      select ${head} m.b as b, r.device_id
      from unnest(${pieces.map((p) => p.b)}::int4[], ${pieces.map((p) => iso(p.month))}::timestamptz[],
        ${pieces.map((p) => p.mask)}::text[]::bit(${bits})[]) as m(b, month, mask)
      join usage_device_month r on r.month = m.month
      where ${where} and (r.slots & m.mask) <> ${zero}::bit(${bits})
      group by ${groupBy}, r.device_id
    ) as per_device
    group by ${groupBy}`;
}

const DAY_MS = 86_400_000;
const decoder = new TextDecoder();

async function rowsFor(db: Db, plan: Plan, keys: string[][] | undefined): Promise<UsageRow[]> {
  if (plan.sel.tenantIds.length === 0 || (keys && keys.length === 0)) return [];
  const { runs, bounds } = plan;
  const runTable = sql`unnest(${runs.map((r) => r.grain)}::int2[], ${runs.map((r) => iso(r.lo))}::timestamptz[],
    ${runs.map((r) => iso(r.hi))}::timestamptz[]) as run(grain, lo, hi)`;
  const bucketOf = sql`width_bucket(r.bucket_start, ${bounds.map(iso)}::timestamptz[])`;
  const { select, needsDevice } = keyColumns(plan);
  const groupCount = select.length;
  const groupBy = sql.join([
    ...select.map((_, i) => sql.raw(String(i + 1))),
    sql.raw(String(groupCount + 1)),
  ]);
  const head = groupCount > 0 ? sql`${sql.join(keyAliases(select))},` : sql``;
  const join = needsDevice ? sql`join device d on d.id = r.device_id` : sql``;
  const counters = sql`sum(r.running_s)::text as running_s, sum(r.stopped_s)::text as stopped_s,
    sum(r.vcpu_mcs)::text as vcpu_mcs, sum(r.memory_mibs)::text as memory_mibs, sum(r.storage_gibs)::text as storage_gibs,
    sum(r.egress_bytes)::text as egress_bytes`;
  // Tenant-level groupings sum the tenant rollups (a tenth of the rows or fewer) and count distinct
  // devices apart; the others need the device rows anyway.
  const tenantLevel = (plan.groupBy === 'tenant' || plan.groupBy === 'subtree') && !plan.sel.deviceId;
  const where = filters(plan, keys);
  // One index range scan per run and tenant (the primary key leads with tenant, grain, bucket).
  const inRun = sql`r.grain = run.grain and r.bucket_start >= run.lo and r.bucket_start < run.hi`;
  const sums = tenantLevel
    ? sql<SumRow>`select ${head} ${bucketOf} as b, ${counters}
        from ${runTable} cross join lateral (select * from usage_rollup_tenant r where ${where} and ${inRun}) r
        group by ${groupBy}`
    : sql<SumRow>`select ${head} ${bucketOf} as b, ${counters}, count(distinct r.device_id) as devices
        from ${runTable} cross join lateral (select * from usage_rollup_device r where ${where} and ${inRun}) r
        ${join} group by ${groupBy}`;
  const devices = !tenantLevel
    ? undefined
    : bounds.length - 1 <= MAX_MASK_BUCKETS
      ? deviceCountsFromMonths(plan, groupCount, head, groupBy, where)
      : sql<SumRow>`select ${head} ${bucketOf} as b, count(distinct r.device_id) as devices
        from ${runTable} cross join lateral (select r.device_id, r.bucket_start, r.tenant_id from usage_rollup_device r
          where ${where} and ${inRun}) r
        group by ${groupBy}`;
  // Viewer seconds: the part of each session (join to end, or now) inside each bucket.
  const bucketTable = sql`unnest(${bounds.slice(0, -1).map(iso)}::timestamptz[], ${bounds.slice(1).map(iso)}::timestamptz[])
    with ordinality as bk(lo, hi, b)`;
  const sessionEnd = sql`coalesce(r.end_time, ${plan.now.toISOString()}::timestamptz)`;
  const viewers = sql<SumRow>`select ${head} bk.b as b,
      sum(floor(extract(epoch from (least(bk.hi, ${sessionEnd}) - greatest(bk.lo, r.start_time)))))::text as viewer_s
    from stream_session r join ${bucketTable} on r.start_time < bk.hi and ${sessionEnd} > bk.lo
    ${join} where r.start_time is not null and ${where} group by ${groupBy}`;
  const [summed, counted, viewed] = await Promise.all([
    sums.execute(db),
    devices?.execute(db),
    viewers.execute(db),
  ]);
  const byKey = new Map<string, UsageRow>();
  const rowOf = (r: SumRow) => {
    const k = `${r.k0 ?? ''}\u0000${r.k1 ?? ''}\u0000${r.b}`;
    let row = byKey.get(k);
    if (!row) {
      const b = Number(r.b);
      row = emptyRow(new Date(bounds[b - 1] as number), new Date(bounds[b] as number));
      const k0 = r.k0 ?? '';
      const k1 = r.k1 ?? '';
      if (plan.groupBy === 'tenant') row.tenantId = k0;
      else if (plan.groupBy === 'device') {
        row.tenantId = k0;
        row.deviceId = k1;
      } else if (plan.groupBy === 'host') row.hostId = k0;
      else if (plan.groupBy === 'image') row.imageId = k0;
      else if (plan.groupBy === 'label') row.labelValue = k0;
      byKey.set(k, row);
    }
    return row;
  };
  for (const r of summed.rows) {
    const row = rowOf(r);
    row.runningSeconds = BigInt(r.running_s ?? '0');
    row.stoppedSeconds = BigInt(r.stopped_s ?? '0');
    row.vcpuMillicoreSeconds = BigInt(r.vcpu_mcs ?? '0');
    row.memoryMibSeconds = BigInt(r.memory_mibs ?? '0');
    row.storageGibSeconds = BigInt(r.storage_gibs ?? '0');
    row.egressBytes = BigInt(r.egress_bytes ?? '0');
    if (r.devices !== undefined) row.deviceCount = Number(r.devices);
  }
  for (const r of counted?.rows ?? []) rowOf(r).deviceCount = Number(r.devices);
  for (const r of viewed.rows) rowOf(r).viewerSeconds = BigInt(r.viewer_s ?? '0');
  return [...byKey.values()].sort(
    (a, b) =>
      compareKey(keyOf(plan.groupBy, a), keyOf(plan.groupBy, b)) || a.start.getTime() - b.start.getTime(),
  );
}

/**
 * Running device-seconds of the tenants over [start, end) (on the 15-minute grid), from the tenant
 * rollups alone: what quota enforcement reads, one index range per run and tenant.
 */
export async function runningSecondsOf(
  db: Kysely<Database> | Transaction<Database>,
  tenantIds: readonly string[],
  start: Date,
  end: Date,
): Promise<bigint> {
  if (tenantIds.length === 0 || end <= start) return 0n;
  const runs = runsOf([start.getTime(), end.getTime()]);
  const result = await sql<{ s: string | null }>`
    select sum(r.running_s)::text as s
    from unnest(${runs.map((r) => r.grain)}::int2[], ${runs.map((r) => iso(r.lo))}::timestamptz[],
      ${runs.map((r) => iso(r.hi))}::timestamptz[]) as run(grain, lo, hi)
    join usage_rollup_tenant r on r.grain = run.grain and r.bucket_start >= run.lo and r.bucket_start < run.hi
    where r.tenant_id = any(${[...tenantIds]}::text[])`.execute(db);
  return BigInt(result.rows[0]?.s ?? '0');
}
