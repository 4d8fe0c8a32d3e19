// Test and benchmark support: usage samples written straight into the store (raw rows and their
// rollups, as the intake writes them), many rows per statement.
import type { Insertable, Kysely } from 'kysely';
import type { Database } from '../store/schema.js';
import { ensureUsagePartitions } from '../usage/partitions.js';
import { addToRollups, type RollupSample } from '../usage/rollups.js';

export interface SampleRun {
  deviceId: string;
  tenantId: string;
  /** First minute. */
  start: Date;
  /** Consecutive one-minute samples. */
  minutes: number;
  /** Minutes between two samples' starts; default 1. */
  everyMinutes?: number;
  state?: string;
  vcpuMillicores?: number;
  memoryMib?: number;
  storageGib?: number;
}

let sequence = 0;

/** Inserts runs of per-minute samples (1000 rows per statement) from a host of their own. */
export async function insertSamples(
  db: Kysely<Database>,
  runs: readonly SampleRun[],
  hostId = 'host_billing',
) {
  let rows: Insertable<Database['usage_sample']>[] = [];
  const flush = async () => {
    if (rows.length > 0) {
      await ensureUsagePartitions(
        db,
        rows.map((r) => new Date(r.start_time)),
      );
      await db.insertInto('usage_sample').values(rows).execute();
      await addToRollups(db, rows as RollupSample[]);
    }
    rows = [];
  };
  for (const run of runs) {
    const step = (run.everyMinutes ?? 1) * 60_000;
    for (let i = 0; i < run.minutes; i++) {
      const start = new Date(run.start.getTime() + i * step);
      rows.push({
        host_id: hostId,
        sequence: ++sequence,
        device_id: run.deviceId,
        tenant_id: run.tenantId,
        start_time: start,
        end_time: new Date(start.getTime() + 60_000),
        vcpu_millicores: run.vcpuMillicores ?? 2000,
        memory_mib: run.memoryMib ?? 4096,
        storage_gib: run.storageGib ?? 8,
        state: run.state ?? 'running',
      });
      if (rows.length >= 1000) await flush();
    }
  }
  await flush();
}
