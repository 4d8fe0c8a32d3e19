// Exactly-once metering intake. Samples are keyed by (host, sequence): a resent sample is a no-op.
// The cursor is the highest sequence below which nothing is missing, so an agent that sent 1, 2, 4
// is told 2 and resends 3 and 4; nothing is acknowledged that is not stored.
//
// An agent is trusted with what runs on its own host only: a sample is counted only if its device
// was placed on the reporting host during the sample's interval, and it is counted under the tenant
// the control plane's own rows give the device, never the one the agent names. Other samples (a
// made-up device, another host's device) are kept in usage_rejected with why, and acknowledged
// like stored ones, so a misbehaving agent's spool drains but nothing of it is billed.
import { timestampDate } from '@bufbuild/protobuf/wkt';
import type { agentv1 } from '@cphone/proto';
import { type Kysely, type RawBuilder, sql, type Transaction } from 'kysely';
import { stateFromProto } from '../devices/state-machine.js';
import type { Database } from '../store/schema.js';
import { ensureUsagePartitions, forgetUsagePartitions } from './partitions.js';
import { rollupWrites } from './rollups.js';

export interface UsageIntake {
  /** Samples stored by this report. */
  inserted: number;
  /** The interval end of each sample stored by this report, epoch ms (the intake lag's start). */
  insertedEnds: number[];
  /** Samples already stored (resent). */
  duplicates: number;
  /** Samples refused as malformed (sequence 0); never acknowledged past. */
  malformed: number;
  /** Samples for devices that were not on the reporting host: kept apart, never counted. */
  foreign: number;
  /** Samples whose tenant disagreed with the device's; stored under the device's tenant. */
  tenantMismatches: number;
  /** The host's cursor after the report. */
  ackedSequence: number;
}

/** The stored cursor: every sample up to it is stored (or rejected). */
export async function usageCursor(
  db: Kysely<Database> | Transaction<Database>,
  hostId: string,
): Promise<number> {
  const row = await db
    .selectFrom('usage_cursor')
    .select('acked_sequence')
    .where('host_id', '=', hostId)
    .executeTakeFirst();
  return row?.acked_sequence ?? 0;
}

interface Owner {
  tenantId: string;
  /** Where the device was placed over time: [since, host], oldest first. */
  placements: { since: number; hostId: string | null }[];
}

// Samples cover whole minutes aligned to the minute, so a device placed at 12:00:30 reports an
// interval from 12:00:00: a placement counts for a sample whose interval it falls in.
const INTERVAL_MS = 60_000;

/** The device's host during the sample that starts at `start`: its last placement before the interval ended. */
function hostAt(owner: Owner, start: number): string | null {
  let host: string | null = null;
  for (const p of owner.placements) {
    if (p.since >= start + INTERVAL_MS) break;
    host = p.hostId;
  }
  return host;
}

/**
 * After the cursor's lock, in one statement: the host's stored sequences above the cursor (usually
 * none: a report normally continues right after it), and who owns each device and where it was
 * placed over time, from its placement events (created on a host, moved to another: each records
 * the host it went to).
 */
async function seenAndOwners(
  trx: Transaction<Database>,
  hostId: string,
  cursor: number,
  deviceIds: readonly string[],
): Promise<{ stored: Set<number>; owners: Map<string, Owner> }> {
  const rows = await sql<{
    kind: 'seen' | 'device' | 'placed';
    a: string;
    b: string | null;
    at: Date | null;
    ord: string | number;
  }>`
    select 'seen' as kind, sequence::text as a, null::text as b, null::timestamptz as at, sequence as ord
      from usage_seen where host_id = ${hostId} and sequence > ${cursor}
    union all
    select 'device', id, tenant_id, null, 0 from device where id = any(${deviceIds}::text[])
    union all
    select 'placed', device_id, host_id, create_time, id from device_event
      where device_id = any(${deviceIds}::text[]) and to_state = 'scheduled'`.execute(trx);
  const stored = new Set<number>();
  const owners = new Map<string, Owner>();
  const placed: { deviceId: string; hostId: string | null; since: number; ord: number }[] = [];
  for (const r of rows.rows) {
    if (r.kind === 'seen') stored.add(Number(r.a));
    else if (r.kind === 'device') owners.set(r.a, { tenantId: r.b ?? '', placements: [] });
    else
      placed.push({
        deviceId: r.a,
        hostId: r.b,
        since: new Date(r.at as Date).getTime(),
        ord: Number(r.ord),
      });
  }
  placed.sort((x, y) => x.ord - y.ord);
  for (const p of placed) owners.get(p.deviceId)?.placements.push({ since: p.since, hostId: p.hostId });
  return { stored, owners };
}

/** How far ahead of the control plane's clock a sample may end: clocks on hosts drift a little. */
const MAX_CLOCK_SKEW_MS = 5 * 60_000;

/**
 * A sample's interval is a real one: dates a database stores, the end not before the start, and
 * not in the future (a host cannot have measured it yet). A placement event is older than any
 * sample of its device, so anything before 2000 is malformed as well.
 */
function saneInterval(start: Date, end: Date, now: Date): boolean {
  const floor = Date.UTC(2000, 0, 1);
  const ceiling = now.getTime() + MAX_CLOCK_SKEW_MS;
  const s = start.getTime();
  const e = end.getTime();
  return Number.isFinite(s) && Number.isFinite(e) && s >= floor && e >= s && e <= ceiling;
}

/** Stores a report's samples idempotently and advances the host's cursor, in one transaction. */
export async function ingestUsage(
  db: Kysely<Database>,
  hostId: string,
  samples: readonly agentv1.UsageSample[],
  now: Date,
): Promise<UsageIntake> {
  const valid = samples.filter((s) => s.sequence > 0n);
  // The raw table is partitioned by month: the months this report falls in must exist first
  // (outside the transaction: partition DDL takes its own lock). Another replica's retention may
  // have dropped one this process thought it had: forget, make it again and retry once.
  const months = valid.flatMap((s) => {
    const start = s.startTime ? timestampDate(s.startTime) : now;
    return saneInterval(start, s.endTime ? timestampDate(s.endTime) : start, now) ? [start] : [];
  });
  await ensureUsagePartitions(db, months);
  try {
    return await ingestIn(db, hostId, samples, valid, now);
  } catch (error) {
    if ((error as { code?: unknown }).code !== NO_PARTITION) throw error;
    forgetUsagePartitions(db);
    await ensureUsagePartitions(db, months);
    return ingestIn(db, hostId, samples, valid, now);
  }
}

/** Rows per statement: each column goes as one array parameter. */
const BATCH = 5000;

// SQLSTATE check_violation: "no partition of relation usage_sample found for row".
const NO_PARTITION = '23514';

async function ingestIn(
  db: Kysely<Database>,
  hostId: string,
  samples: readonly agentv1.UsageSample[],
  valid: readonly agentv1.UsageSample[],
  now: Date,
): Promise<UsageIntake> {
  return db.transaction().execute(async (trx) => {
    // The cursor row serialises concurrent reports of one host (an old and a new stream): the
    // upsert locks it (made at 0 the first time) and returns the latest committed cursor.
    const locked = await sql<{ acked_sequence: string | number }>`
      insert into usage_cursor (host_id, acked_sequence) values (${hostId}, 0)
      on conflict (host_id) do update set acked_sequence = usage_cursor.acked_sequence
      returning acked_sequence`.execute(trx);
    const cursor = { acked_sequence: Number(locked.rows[0]?.acked_sequence ?? 0) };
    // Exactly-once: everything at or below the cursor is stored already; above it, usage_seen
    // holds what is (see migrations/2026-12-04T0100-usage-partitions-rollups.ts). The cursor row's
    // lock makes this transaction the only one reading or writing the host's usage_seen rows.
    const above = new Map<number, agentv1.UsageSample>();
    for (const s of valid) {
      const sequence = Number(s.sequence);
      if (sequence > cursor.acked_sequence && !above.has(sequence)) above.set(sequence, s);
    }
    const sequences = [...above.keys()].sort((a, b) => a - b);
    if (sequences.length === 0) {
      return {
        inserted: 0,
        insertedEnds: [],
        duplicates: valid.length,
        malformed: samples.length - valid.length,
        foreign: 0,
        tenantMismatches: 0,
        ackedSequence: cursor.acked_sequence,
      };
    }
    // Which of them are stored already, and the owners of their devices, in one statement.
    const { stored, owners: known } = await seenAndOwners(trx, hostId, cursor.acked_sequence, [
      ...new Set(sequences.map((q) => (above.get(q) as agentv1.UsageSample).deviceId)),
    ]);
    const storedBefore = [...stored];
    const fresh: agentv1.UsageSample[] = [];
    for (const sequence of sequences) {
      if (!stored.has(sequence)) fresh.push(above.get(sequence) as agentv1.UsageSample);
    }
    let tenantMismatches = 0;
    const accepted = [];
    const rejected = [];
    for (const s of fresh) {
      const start = s.startTime ? timestampDate(s.startTime) : now;
      const end = s.endTime ? timestampDate(s.endTime) : start;
      const owner = known.get(s.deviceId);
      const onHost = owner !== undefined && hostAt(owner, start.getTime()) === hostId;
      const reason = !saneInterval(start, end, now)
        ? 'BAD_INTERVAL'
        : !owner
          ? 'UNKNOWN_DEVICE'
          : !onHost
            ? 'DEVICE_NOT_ON_HOST'
            : undefined;
      if (reason !== undefined || !owner) {
        rejected.push({
          host_id: hostId,
          sequence: Number(s.sequence),
          device_id: s.deviceId,
          claimed_tenant_id: s.tenantId,
          reason: reason ?? 'UNKNOWN_DEVICE',
        });
        continue;
      }
      if (owner.tenantId !== s.tenantId) tenantMismatches++;
      accepted.push({
        host_id: hostId,
        sequence: Number(s.sequence),
        device_id: s.deviceId,
        tenant_id: owner.tenantId,
        start_time: start,
        end_time: end,
        vcpu_millicores: s.vcpuMillicores,
        memory_mib: s.memoryMib,
        storage_gib: s.storageGib,
        state: stateFromProto(s.state) ?? 'unknown',
        // A sample covers a minute or so: far below 2^53 bytes.
        egress_bytes: Number(s.egressBytes),
      });
    }
    // Every write of the report goes as one statement (data-modifying CTEs, run in this order):
    // raw rows, rollups, rejected samples, sequences beyond the cursor, the cursor.
    const writes: RawBuilder<unknown>[] = [];
    for (let i = 0; i < accepted.length; i += BATCH) {
      const rows = accepted.slice(i, i + BATCH);
      const col = <K extends keyof (typeof rows)[number]>(k: K) => rows.map((r) => r[k]);
      // The host is one value, and times go as epoch milliseconds (numbers cost pg far less to
      // encode than ISO strings).
      const ms = (d: Date) => d.getTime();
      writes.push(sql`insert into usage_sample (host_id, sequence, device_id, tenant_id, start_time, end_time,
          vcpu_millicores, memory_mib, storage_gib, state, egress_bytes)
        select ${hostId}, q, d, t, timestamptz 'epoch' + s * interval '1 millisecond',
          timestamptz 'epoch' + e * interval '1 millisecond', v, m, g, st, x
        from unnest(${col('sequence')}::int8[], ${col('device_id')}::text[], ${col('tenant_id')}::text[],
          ${rows.map((r) => ms(r.start_time))}::int8[], ${rows.map((r) => ms(r.end_time))}::int8[],
          ${col('vcpu_millicores')}::int4[], ${col('memory_mib')}::int4[], ${col('storage_gib')}::int4[],
          ${col('state')}::text[], ${col('egress_bytes')}::int8[]) as u(q, d, t, s, e, v, m, g, st, x)`);
    }
    writes.push(...rollupWrites(accepted));
    for (let i = 0; i < rejected.length; i += BATCH) {
      const rows = rejected.slice(i, i + BATCH);
      const col = <K extends keyof (typeof rows)[number]>(k: K) => rows.map((r) => r[k]);
      writes.push(sql`insert into usage_rejected (host_id, sequence, device_id, claimed_tenant_id, reason)
        select * from unnest(${col('host_id')}::text[], ${col('sequence')}::int8[], ${col('device_id')}::text[],
          ${col('claimed_tenant_id')}::text[], ${col('reason')}::text[])
        on conflict (host_id, sequence) do nothing`);
    }
    // The new cursor: the run of stored sequences (old and new) right after it. Only what lies
    // beyond it goes to usage_seen; below it the cursor itself remembers.
    let top = cursor.acked_sequence;
    for (const sequence of fresh.map((f) => Number(f.sequence))) stored.add(sequence);
    while (stored.has(top + 1)) top++;
    const beyond = fresh.map((f) => Number(f.sequence)).filter((q) => q > top);
    for (let i = 0; i < beyond.length; i += BATCH) {
      writes.push(sql`insert into usage_seen (host_id, sequence)
        select ${hostId}, q from unnest(${beyond.slice(i, i + BATCH)}::int8[]) as u(q)`);
    }
    if (top > cursor.acked_sequence) {
      writes.push(sql`update usage_cursor set acked_sequence = ${top} where host_id = ${hostId}`);
      // The stored sequences the cursor now covers (the CTEs see the rows as of the statement's
      // start: the new ones above lie beyond top).
      if (storedBefore.some((q) => q <= top))
        writes.push(sql`delete from usage_seen where host_id = ${hostId} and sequence <= ${top}`);
    }
    if (writes.length > 0) {
      const parts = writes.map((w, i) => sql`${sql.ref(`w${i}`)} as (${w})`);
      await sql`with ${sql.join(parts)} select 1`.execute(trx);
    }
    const inserted = accepted.length;
    return {
      inserted,
      insertedEnds: accepted.map((a) => a.end_time.getTime()),
      duplicates: valid.length - fresh.length,
      malformed: samples.length - valid.length,
      foreign: rejected.length,
      tenantMismatches,
      ackedSequence: Math.max(top, cursor.acked_sequence),
    };
  });
}
