import { type Kysely, type Migration, type MigrationProvider, Migrator, sql } from 'kysely';
import * as initial from './migrations/2026-11-22T0000-initial.js';
import * as hostAgentFacts from './migrations/2026-11-23T0100-host-agent-facts.js';
import * as hostsTenantsArtifacts from './migrations/2026-11-23T0200-hosts-tenants-artifacts.js';
import * as deviceImageFields from './migrations/2026-11-23T0300-device-image-fields.js';
import * as drainDevices from './migrations/2026-11-24T0100-drain-devices.js';
import * as gatewayReplicas from './migrations/2026-11-25T0100-gateway-replicas.js';
import * as typedSpecsQuotaRows from './migrations/2026-12-01T0100-typed-specs-quota-rows.js';
import * as streamSessions from './migrations/2026-12-01T0200-stream-sessions.js';
import * as hostChangeFeed from './migrations/2026-12-02T0100-host-change-feed.js';
import * as webUsers from './migrations/2026-12-02T0200-web-users.js';
import * as adbTunnels from './migrations/2026-12-03T0100-adb-tunnels.js';
import * as usagePartitionsRollups from './migrations/2026-12-04T0100-usage-partitions-rollups.js';
import * as billing from './migrations/2026-12-04T0200-billing-price-books-statements.js';
import * as webhooksOutbox from './migrations/2026-12-04T0300-webhooks-outbox.js';
import * as auditTrailRateLimits from './migrations/2026-12-04T0400-audit-trail-rate-limits.js';
import * as quotaMinutes from './migrations/2026-12-04T0500-quota-minutes.js';
import * as usageDeviceMonths from './migrations/2026-12-05T0100-usage-device-months.js';
import * as usageTenantRollupCovering from './migrations/2026-12-05T0200-usage-tenant-rollup-covering.js';
import * as usageEgress from './migrations/2026-12-06T0100-usage-egress.js';

// Migrations are listed here rather than read from a folder, so they bundle and type-check with
// the code; names sort by timestamp.
const migrations: Record<string, Migration> = {
  '2026-11-22T0000-initial': initial,
  '2026-11-23T0100-host-agent-facts': hostAgentFacts,
  '2026-11-23T0200-hosts-tenants-artifacts': hostsTenantsArtifacts,
  '2026-11-23T0300-device-image-fields': deviceImageFields,
  '2026-11-24T0100-drain-devices': drainDevices,
  '2026-11-25T0100-gateway-replicas': gatewayReplicas,
  '2026-12-01T0100-typed-specs-quota-rows': typedSpecsQuotaRows,
  '2026-12-01T0200-stream-sessions': streamSessions,
  '2026-12-02T0100-host-change-feed': hostChangeFeed,
  '2026-12-02T0200-web-users': webUsers,
  '2026-12-03T0100-adb-tunnels': adbTunnels,
  '2026-12-04T0100-usage-partitions-rollups': usagePartitionsRollups,
  '2026-12-04T0200-billing-price-books-statements': billing,
  '2026-12-04T0300-webhooks-outbox': webhooksOutbox,
  '2026-12-04T0400-audit-trail-rate-limits': auditTrailRateLimits,
  '2026-12-04T0500-quota-minutes': quotaMinutes,
  '2026-12-05T0100-usage-device-months': usageDeviceMonths,
  '2026-12-05T0200-usage-tenant-rollup-covering': usageTenantRollupCovering,
  '2026-12-06T0100-usage-egress': usageEgress,
};

const provider: MigrationProvider = { getMigrations: async () => migrations };

/** Brings the schema to the latest migration; throws with the failing migration's name. */
// biome-ignore lint/suspicious/noExplicitAny: the migrator works on any schema.
export async function migrateToLatest(db: Kysely<any>): Promise<string[]> {
  const migrator = new Migrator({ db, provider });
  const { error, results } = await migrator.migrateToLatest();
  if (error) {
    const failed = results?.find((r) => r.status === 'Error')?.migrationName ?? 'unknown';
    throw new Error(`migration ${failed} failed: ${error instanceof Error ? error.message : String(error)}`, {
      cause: error,
    });
  }
  return (results ?? []).filter((r) => r.status === 'Success').map((r) => r.migrationName);
}

export interface SchemaStatus {
  /** This release's migrations the database has not applied. */
  readonly pending: string[];
  /** Applied migrations this release does not know: a newer release migrated the database. */
  readonly unknown: string[];
}

/** How the database's schema compares to this release's migrations; changes nothing. */
// biome-ignore lint/suspicious/noExplicitAny: the migrator works on any schema.
export async function schemaStatus(db: Kysely<any>): Promise<SchemaStatus> {
  const exists = await sql<{
    name: string | null;
  }>`select to_regclass('kysely_migration')::text as name`.execute(db);
  const applied = exists.rows[0]?.name
    ? (await sql<{ name: string }>`select name from kysely_migration`.execute(db)).rows.map((r) => r.name)
    : [];
  const done = new Set(applied);
  return {
    pending: Object.keys(migrations).filter((name) => !done.has(name)),
    unknown: applied.filter((name) => !(name in migrations)).sort(),
  };
}

/** Brings the schema up (or down) to the named migration: for tests of a migration over old data. */
// biome-ignore lint/suspicious/noExplicitAny: the migrator works on any schema.
export async function migrateTo(db: Kysely<any>, name: string): Promise<void> {
  const { error } = await new Migrator({ db, provider }).migrateTo(name);
  if (error) throw error;
}
