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
import { type Kysely, sql, type Transaction } from 'kysely';
import { stateFromProto } from '../devices/state-machine.js';
import type { Database } from '../store/schema.js';
import { ensureUsagePartitions, forgetUsagePartitions } from './partitions.js';
import { addToRollups } from './rollups.js';

export interface UsageIntake {
  /** Samples stored by this report. */
  inserted: number;
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
 * Who owns each device and where it was placed over time, from its placement events (created on a
 * host, moved to another: each records the host it went to).
 */
async function owners(trx: Transaction<Database>, deviceIds: readonly string[]) {
  const out = new Map<string, Owner>();
  if (deviceIds.length === 0) return out;
  const rows = await trx
    .selectFrom('device')
    .select(['id', 'tenant_id'])
    .where('id', 'in', deviceIds)
    .execute();
  for (const row of rows) out.set(row.id, { tenantId: row.tenant_id, placements: [] });
  const events = await trx
    .selectFrom('device_event')
    .select(['device_id', 'host_id', 'create_time'])
    .where('device_id', 'in', deviceIds)
    .where('to_state', '=', 'scheduled')
    .orderBy('id')
    .execute();
  for (const e of events)
    out.get(e.device_id)?.placements.push({ since: e.create_time.getTime(), hostId: e.host_id });
  return out;
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
    // The cursor row serialises concurrent reports of one host (an old and a new stream).
    await trx
      .insertInto('usage_cursor')
      .values({ host_id: hostId, acked_sequence: 0 })
      .onConflict((c) => c.column('host_id').doNothing())
      .execute();
    const cursor = await trx
      .selectFrom('usage_cursor')
      .select('acked_sequence')
      .where('host_id', '=', hostId)
      .forUpdate()
      .executeTakeFirstOrThrow();
    // Exactly-once: everything at or below the cursor is stored already; above it, usage_seen
    // holds what is (see migrations/2026-12-04T0100-usage-partitions-rollups.ts). The cursor row's
    // lock makes this transaction the only one reading or writing the host's usage_seen rows.
    const above = new Map<number, agentv1.UsageSample>();
    for (const s of valid) {
      const sequence = Number(s.sequence);
      if (sequence > cursor.acked_sequence && !above.has(sequence)) above.set(sequence, s);
    }
    // Which of them are stored already: usage_seen holds the stored sequences above the cursor
    // (usually none: a report normally continues right after the cursor).
    const sequences = [...above.keys()].sort((a, b) => a - b);
    const stored = new Set<number>();
    if (sequences.length > 0) {
      const rows = await sql<{ sequence: string | number }>`
        select sequence from usage_seen where host_id = ${hostId} and sequence > ${cursor.acked_sequence}`.execute(
        trx,
      );
      for (const r of rows.rows) stored.add(Number(r.sequence));
    }
    const fresh: agentv1.UsageSample[] = [];
    for (const sequence of sequences) {
      if (!stored.has(sequence)) fresh.push(above.get(sequence) as agentv1.UsageSample);
    }
    const known = await owners(trx, [...new Set(fresh.map((s) => s.deviceId))]);
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
      });
    }
    for (let i = 0; i < accepted.length; i += BATCH) {
      const rows = accepted.slice(i, i + BATCH);
      const col = <K extends keyof (typeof rows)[number]>(k: K) => rows.map((r) => r[k]);
      await sql`insert into usage_sample (host_id, sequence, device_id, tenant_id, start_time, end_time,
          vcpu_millicores, memory_mib, storage_gib, state)
        select * from unnest(${col('host_id')}::text[], ${col('sequence')}::int8[], ${col('device_id')}::text[],
          ${col('tenant_id')}::text[], ${rows.map((r) => r.start_time.toISOString())}::timestamptz[],
          ${rows.map((r) => r.end_time.toISOString())}::timestamptz[], ${col('vcpu_millicores')}::int4[],
          ${col('memory_mib')}::int4[], ${col('storage_gib')}::int4[], ${col('state')}::text[])`.execute(trx);
    }
    await addToRollups(trx, accepted);
    for (let i = 0; i < rejected.length; i += 1000) {
      await trx
        .insertInto('usage_rejected')
        .values(rejected.slice(i, i + 1000))
        .onConflict((c) => c.columns(['host_id', 'sequence']).doNothing())
        .execute();
    }
    // The new cursor: the run of stored sequences (old and new) right after it. Only what lies
    // beyond it goes to usage_seen; below it the cursor itself remembers.
    let top = cursor.acked_sequence;
    for (const sequence of fresh.map((f) => Number(f.sequence))) stored.add(sequence);
    while (stored.has(top + 1)) top++;
    const beyond = fresh.map((f) => Number(f.sequence)).filter((q) => q > top);
    for (let i = 0; i < beyond.length; i += BATCH) {
      await sql`insert into usage_seen (host_id, sequence)
        select ${hostId}, q from unnest(${beyond.slice(i, i + BATCH)}::int8[]) as u(q)`.execute(trx);
    }
    if (top > cursor.acked_sequence) {
      await trx
        .updateTable('usage_cursor')
        .set({ acked_sequence: top })
        .where('host_id', '=', hostId)
        .execute();
      await trx.deleteFrom('usage_seen').where('host_id', '=', hostId).where('sequence', '<=', top).execute();
    }
    const inserted = accepted.length;
    return {
      inserted,
      duplicates: valid.length - fresh.length,
      malformed: samples.length - valid.length,
      foreign: rejected.length,
      tenantMismatches,
      ackedSequence: Math.max(top, cursor.acked_sequence),
    };
  });
}
