// Drill (a): backup, destroy, point-in-time restore.
//
//   npx tsx deploy/drills/restore.ts [--mode=lean|full] [--target=time|lsn]
//
// A PostgreSQL server of the drill's own archives its WAL to a local folder (archive_command, as
// CloudNativePG's barman-cloud archives to object storage) and is base-backed-up with
// pg_basebackup. The real control plane runs on it with real agents: phones are created through the
// API and meter usage. Then the load stops, the drill reads its figures (counts of the key tables,
// usage sums) and notes the target (a time or an LSN), more phones are created after the target,
// and the server is killed and its data dir deleted. The restore copies the base backup back, sets
// restore_command and recovery_target_time (or _lsn) and starts: PostgreSQL replays the archive up
// to the target and promotes. The control plane, left running all along, reconnects on its own; the
// drill checks it answers /readyz and the API, that every figure equals the one read at the target,
// that every phone created before the target is there and none created after it.
import { chmod, cp, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { DeviceService } from '@cphone/proto';
import { type Mode, modeFromArgs, ms, pool, progress, runAsCommand } from './lib/drill.js';
import { createPhone, type Fleet, SNAPSHOT_SQL, type Snapshot, startFleet, toSnapshot } from './lib/plane.js';
import { chownR, drillDir, PgServer, pgBin, serverDir, until } from './lib/postgres.js';

export interface RestoreOptions {
  mode?: Mode;
  /** What the restore targets: a commit time (recovery_target_time) or a WAL position (_lsn). */
  target?: 'time' | 'lsn';
}

export interface RestoreSummary {
  drill: 'restore';
  mode: Mode;
  target: 'time' | 'lsn';
  targetValue: string;
  passed: boolean;
  failures: string[];
  figures: {
    devicesBeforeTarget: number;
    devicesAfterTarget: number;
    /** Key tables and usage sums compared, each equal before and after. */
    rowsCompared: number;
    figuresCompared: number;
    mismatches: Record<string, { atTarget: number; restored: number }>;
    devicesMissing: number;
    devicesAfterTargetPresent: number;
    baseBackupMs: number;
    walSegmentsArchived: number;
    /** Copy of the base backup, replay to the target and promotion. */
    restoreMs: number;
    /** From the restore's start until the running control plane answers /readyz and the API. */
    controlPlaneBackMs: number;
    atTarget: Snapshot;
    restored: Snapshot;
  };
}

const SIZES = {
  lean: { hosts: 1, before: 6, after: 3, usageMs: 1500, concurrency: 3 },
  full: { hosts: 3, before: 90, after: 30, usageMs: 20_000, concurrency: 8 },
} as const;

async function snapshot(server: PgServer): Promise<Snapshot> {
  return toSnapshot((await server.query(SNAPSHOT_SQL, [], 'cphone'))[0]);
}

async function quiet(server: PgServer): Promise<Snapshot> {
  // Equal figures 1 s apart: whatever was in flight (usage resends, state reports) has landed.
  let last = await snapshot(server);
  return until(
    'the figures to settle',
    async () => {
      await new Promise((r) => setTimeout(r, 1000));
      const now = await snapshot(server);
      const same = JSON.stringify(now) === JSON.stringify(last);
      last = now;
      return same ? now : undefined;
    },
    60_000,
    0,
  );
}

export async function restoreDrill(options: RestoreOptions = {}): Promise<RestoreSummary> {
  const mode = options.mode ?? 'lean';
  const target = options.target ?? 'time';
  const size = SIZES[mode];
  const log = progress('restore');
  const dir = await drillDir('cphone-drill-restore-');
  const archive = await serverDir(dir, 'wal-archive');
  const backup = join(dir, 'base-backup');
  const primary = await PgServer.init(dir, 'data', {
    settings: {
      wal_level: 'replica',
      archive_mode: 'on',
      archive_command: `test ! -f ${archive}/%f && cp %p ${archive}/%f`,
      max_wal_senders: 4,
    },
  });
  let fleet: Fleet | undefined;
  try {
    await primary.start();
    await primary.query('create database cphone');
    fleet = await startFleet({ databaseUrl: primary.url('cphone'), hosts: size.hosts });
    log('control plane up on the drill server', { port: primary.port, hosts: size.hosts });

    let started = performance.now();
    await pgBin('pg_basebackup', [
      ...['-h', '127.0.0.1', '-p', String(primary.port), '-U', 'postgres'],
      ...['-D', backup, '-X', 'stream', '-c', 'fast', '--no-sync'],
    ]);
    const baseBackupMs = ms(started);
    log('base backup taken', { baseBackupMs });

    // Load before the target: phones created through the API, run by real agents, metering usage.
    for (let i = 0; i < size.hosts; i++) await fleet.startAgent(i);
    await fleet.waitForHosts();
    const before: string[] = [];
    const names = Array.from({ length: size.before }, (_, i) => `before-${i}`);
    const f = fleet;
    await pool(names, size.concurrency, async (name) => {
      before.push(await createPhone(f, name));
    });
    await until(
      'the phones to run',
      async () => {
        const [row] = await primary.query<{ n: string }>(
          `select count(*) as n from device where state = 'running'`,
          [],
          'cphone',
        );
        return Number(row?.n) === before.length;
      },
      120_000,
      200,
    );
    await new Promise((r) => setTimeout(r, size.usageMs));
    // The agents stay connected; only their metering stops, so the figures can settle.
    for (const agent of fleet.agents) await agent.sampler.stop();
    const atTarget = await quiet(primary);
    if (atTarget.usage_samples === 0) throw new Error('no usage was metered before the target');
    const [mark] = await primary.query<{ time: string; lsn: string }>(
      `select to_char(clock_timestamp() at time zone 'UTC', 'YYYY-MM-DD HH24:MI:SS.US+00') as time,
              pg_current_wal_lsn()::text as lsn`,
    );
    const targetValue = target === 'time' ? String(mark?.time) : String(mark?.lsn);
    const confirm = await snapshot(primary);
    if (JSON.stringify(confirm) !== JSON.stringify(atTarget))
      throw new Error('figures moved across the target');
    log('target noted', { target, targetValue, atTarget });

    // Load after the target: rows the restore must not bring back.
    const after: string[] = [];
    await new Promise((r) => setTimeout(r, 50));
    await pool(
      Array.from({ length: size.after }, (_, i) => `after-${i}`),
      size.concurrency,
      async (name) => {
        after.push(await createPhone(f, name));
      },
    );
    // Everything up to here reaches the archive (in production archive_timeout bounds the delay).
    const [switched] = await primary.query<{ wal: string }>('select pg_walfile_name(pg_switch_wal()) as wal');
    await until('the WAL to be archived', async () => {
      const [s] = await primary.query<{ last: string | null }>(
        'select last_archived_wal as last from pg_stat_archiver',
      );
      return s?.last !== null && s?.last !== undefined && s.last >= String(switched?.wal);
    });
    const [archived] = await primary.query<{ n: string }>('select archived_count as n from pg_stat_archiver');

    // The disaster: the server dies and its data dir is gone.
    await primary.kill9();
    await primary.destroy();
    log('primary killed and its data dir deleted', { devicesAfterTarget: after.length });

    started = performance.now();
    await cp(backup, primary.dataDir, { recursive: true });
    await primary.configure({
      restore_command: `cp ${archive}/%f %p`,
      ...(target === 'time' ? { recovery_target_time: targetValue } : { recovery_target_lsn: targetValue }),
      recovery_target_action: 'promote',
      archive_mode: 'off',
    });
    await writeFile(join(primary.dataDir, 'recovery.signal'), '');
    await chmod(primary.dataDir, 0o700);
    await chownR(primary.dataDir);
    await primary.start();
    await until(
      'the restored server to promote',
      async () => (await primary.query<{ r: boolean }>('select pg_is_in_recovery() as r'))[0]?.r === false,
      120_000,
      100,
    );
    const restoreMs = ms(started);
    log('restored and promoted', { restoreMs });

    // The control plane ran all along; it must reconnect by itself.
    await until(
      'the control plane to answer /readyz and the API',
      async () => {
        const ready = await fetch(`${f.plane.httpUrl}/readyz`).catch(() => undefined);
        if (ready?.status !== 200) return false;
        await f.client(DeviceService).listDevices({ tenantId: f.tenantId, pageSize: 1 });
        return true;
      },
      60_000,
      100,
    );
    const controlPlaneBackMs = ms(started);
    const restored = await snapshot(primary);
    const mismatches: RestoreSummary['figures']['mismatches'] = {};
    for (const [k, v] of Object.entries(atTarget))
      if (restored[k] !== v) mismatches[k] = { atTarget: v, restored: restored[k] ?? Number.NaN };
    const present = new Set(
      (await primary.query<{ id: string }>('select id from device', [], 'cphone')).map((r) => r.id),
    );
    const devicesMissing = before.filter((id) => !present.has(id)).length;
    const devicesAfterTargetPresent = after.filter((id) => present.has(id)).length;
    // And it writes again: one more phone through the API.
    const last = await createPhone(f, 'after-restore');
    const failures: string[] = [];
    if (Object.keys(mismatches).length > 0) failures.push(`figures differ: ${JSON.stringify(mismatches)}`);
    if (devicesMissing > 0) failures.push(`${devicesMissing} phones created before the target are missing`);
    if (devicesAfterTargetPresent > 0)
      failures.push(`${devicesAfterTargetPresent} phones created after the target came back`);
    if (after.length === 0) failures.push('no phone was created after the target');
    if (!last) failures.push('no phone could be created after the restore');
    const rowsCompared = [
      'tenants',
      'hosts',
      'images',
      'api_keys',
      'devices',
      'device_events',
      'usage_samples',
    ]
      .map((k) => atTarget[k] ?? 0)
      .reduce((a, b) => a + b, 0);
    return {
      drill: 'restore',
      mode,
      target,
      targetValue,
      passed: failures.length === 0,
      failures,
      figures: {
        devicesBeforeTarget: before.length,
        devicesAfterTarget: after.length,
        rowsCompared,
        figuresCompared: Object.keys(atTarget).length,
        mismatches,
        devicesMissing,
        devicesAfterTargetPresent,
        baseBackupMs,
        walSegmentsArchived: Number(archived?.n),
        restoreMs,
        controlPlaneBackMs,
        atTarget,
        restored,
      },
    };
  } finally {
    await fleet?.close();
    await primary.stop('immediate');
    await rm(dir, { recursive: true, force: true });
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const target = process.argv.find((a) => a.startsWith('--target='))?.slice('--target='.length) ?? 'time';
  if (target !== 'time' && target !== 'lsn') throw new Error(`--target must be time or lsn, not ${target}`);
  await runAsCommand(() => restoreDrill({ mode: modeFromArgs(), target }));
}
