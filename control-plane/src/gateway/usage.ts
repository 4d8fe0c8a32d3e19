// Exactly-once metering intake. Samples are keyed by (host, sequence): a resent sample is a no-op.
// The cursor is the highest sequence below which nothing is missing, so an agent that sent 1, 2, 4
// is told 2 and resends 3 and 4; nothing is acknowledged that is not stored.
import { timestampDate } from '@bufbuild/protobuf/wkt';
import type { agentv1 } from '@cphone/proto';
import { type Kysely, sql, type Transaction } from 'kysely';
import { stateFromProto } from '../devices/state-machine.js';
import type { Database } from '../store/schema.js';

export interface UsageIntake {
  /** Samples stored by this report. */
  inserted: number;
  /** Samples already stored (resent). */
  duplicates: number;
  /** Samples refused as malformed (sequence 0); never acknowledged past. */
  rejected: number;
  /** Samples whose tenant disagreed with the device's; stored under the device's tenant. */
  tenantMismatches: number;
  /** The host's cursor after the report. */
  ackedSequence: number;
}

/** The stored cursor: every sample up to it is stored. */
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

/** Stores a report's samples idempotently and advances the host's cursor, in one transaction. */
export async function ingestUsage(
  db: Kysely<Database>,
  hostId: string,
  samples: readonly agentv1.UsageSample[],
  now: Date,
): Promise<UsageIntake> {
  const valid = samples.filter((s) => s.sequence > 0n);
  const deviceIds = [...new Set(valid.map((s) => s.deviceId))];
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
    const tenants = new Map<string, string>();
    if (deviceIds.length > 0) {
      const rows = await trx
        .selectFrom('device')
        .select(['id', 'tenant_id'])
        .where('id', 'in', deviceIds)
        .execute();
      for (const row of rows) tenants.set(row.id, row.tenant_id);
    }
    let tenantMismatches = 0;
    const values = valid.map((s) => {
      const known = tenants.get(s.deviceId);
      if (known !== undefined && known !== s.tenantId) tenantMismatches++;
      const start = s.startTime ? timestampDate(s.startTime) : now;
      return {
        host_id: hostId,
        sequence: Number(s.sequence),
        device_id: s.deviceId,
        tenant_id: known ?? s.tenantId,
        start_time: start,
        end_time: s.endTime ? timestampDate(s.endTime) : start,
        vcpu_millicores: s.vcpuMillicores,
        memory_mib: s.memoryMib,
        storage_gib: s.storageGib,
        state: stateFromProto(s.state) ?? 'unknown',
      };
    });
    let inserted = 0;
    for (let i = 0; i < values.length; i += 1000) {
      const batch = values.slice(i, i + 1000);
      const stored = await trx
        .insertInto('usage_sample')
        .values(batch)
        .onConflict((c) => c.columns(['host_id', 'sequence']).doNothing())
        .returning('sequence')
        .execute();
      inserted += stored.length;
    }
    // Consecutive sequences above the cursor share (sequence - row_number) = cursor.
    const contiguous = await sql<{ top: number | null }>`
      select max(sequence) as top from (
        select sequence, sequence - row_number() over (order by sequence) as gap
        from usage_sample where host_id = ${hostId} and sequence > ${cursor.acked_sequence}
      ) runs where gap = ${cursor.acked_sequence}`.execute(trx);
    const top = Number(contiguous.rows[0]?.top ?? cursor.acked_sequence);
    if (top > cursor.acked_sequence) {
      await trx
        .updateTable('usage_cursor')
        .set({ acked_sequence: top })
        .where('host_id', '=', hostId)
        .execute();
    }
    return {
      inserted,
      duplicates: valid.length - inserted,
      rejected: samples.length - valid.length,
      tenantMismatches,
      ackedSequence: Math.max(top, cursor.acked_sequence),
    };
  });
}
