// Drill (b): the primary dies mid-load; the synchronous standby takes over.
//
//   npx tsx deploy/drills/failover.ts [--mode=lean|full]
//
// Two PostgreSQL servers of the drill's own: a primary and a standby streaming from it, named in
// synchronous_standby_names with synchronous_commit=on (CloudNativePG's synchronous replication:
// a commit is acknowledged once the standby has it). The control plane connects through a proxy
// that plays the `-rw` Service (deploy/drills/lib/proxy.ts). Load runs: phones created through the
// public API by several callers, and real agents whose phones meter usage every 250 ms. The drill
// kills the primary with SIGKILL (postmaster and backends at once), promotes the standby
// (pg_ctl promote) and points the proxy at it, as the operator does. Figures:
//   rtoMs               kill -> the first create (sent after the kill) acknowledged
//   requestsFailed      creates that failed (all of them inside the window)
//   rowsLost            phones the API acknowledged that the new primary does not have (must be 0)
//   usageSamplesLost    acknowledged usage samples the new primary lacks (must be 0), and every
//                       agent's spool drained once metering stops
//   leadershipAcquired  times the control plane took the leadership after the kill (must be 1;
//                       the drill waits up to 60 s for it: leadershipRegainedMs)
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { Code, ConnectError } from '@connectrpc/connect';
import { type Mode, modeFromArgs, progress, runAsCommand } from './lib/drill.js';
import { createPhone, type Fleet, LEADS, startFleet } from './lib/plane.js';
import { drillDir, freePort, PgServer, pgBin, serverDir, until } from './lib/postgres.js';
import { PrimaryProxy } from './lib/proxy.js';

export interface FailoverOptions {
  mode?: Mode;
  /** Wait between the kill and the promotion (the operator's detection time). Default 0. */
  detectMs?: number;
}

export interface FailoverSummary {
  drill: 'failover';
  mode: Mode;
  passed: boolean;
  failures: string[];
  figures: {
    rtoMs: number;
    /** Kill -> the standby accepts writes (promotion done) and the proxy points at it. */
    promotedMs: number;
    requestsAcknowledged: number;
    requestsFailed: number;
    failedCodes: Record<string, number>;
    /** First and last failed request, ms after the kill (negative: before it). */
    failedWindowMs: [number, number] | null;
    rowsLost: number;
    usageSamplesStored: number;
    usageSamplesLost: number;
    /** Samples the agents spooled that the control plane had not acknowledged when the drain ended. */
    usageUnacknowledged: number;
    /** Metering stopped -> every agent's spool acknowledged. */
    usageDrainMs: number;
    leadershipAcquiredBeforeKill: number;
    leadershipAcquiredAfterKill: number;
    /** Kill -> the control plane leads again (null: not within 60 s). */
    leadershipRegainedMs: number | null;
    leaderAtEnd: boolean;
    /** The pooled connections the control plane saw fail (each logged, none fatal). */
    poolConnectionsFailed: number;
    syncStateBeforeKill: string;
  };
}

const SIZES = {
  lean: { hosts: 1, callers: 2, pauseMs: 100, warmupMs: 3000, afterMs: 2000 },
  full: { hosts: 3, callers: 6, pauseMs: 50, warmupMs: 20_000, afterMs: 15_000 },
} as const;

interface Outcome {
  start: number;
  end: number;
  id?: string;
  code?: string;
}

export async function failoverDrill(options: FailoverOptions = {}): Promise<FailoverSummary> {
  const mode = options.mode ?? 'lean';
  const size = SIZES[mode];
  const log = progress('failover');
  const dir = await drillDir('cphone-drill-failover-');
  const primary = await PgServer.init(dir, 'primary', {
    settings: {
      wal_level: 'replica',
      max_wal_senders: 5,
      synchronous_commit: 'on',
      wal_keep_size: '256MB',
    },
  });
  let standby: PgServer | undefined;
  let proxy: PrimaryProxy | undefined;
  let fleet: Fleet | undefined;
  try {
    await primary.start();
    await primary.query('create database cphone');
    const standbyDir = join(dir, 'standby');
    await pgBin('pg_basebackup', [
      ...['-h', '127.0.0.1', '-p', String(primary.port), '-U', 'postgres'],
      ...['-D', standbyDir, '-X', 'stream', '-c', 'fast', '--no-sync', '-R'],
    ]);
    standby = new PgServer(standbyDir, await freePort(), await serverDir(dir, 'standby-run'));
    await standby.configure({
      primary_conninfo: `host=127.0.0.1 port=${primary.port} user=postgres application_name=standby`,
      // Promoted, it has no standby of its own: commits must not wait for one (CloudNativePG
      // lowers the synchronous set to the replicas that are left).
      synchronous_standby_names: '',
    });
    await standby.start();
    // Named once it streams (a commit before that would wait for it forever).
    await primary.query(`alter system set synchronous_standby_names = 'standby'`);
    await primary.query('select pg_reload_conf()');
    const syncStateBeforeKill = await until('the standby to be synchronous', async () => {
      const rows = await primary.query<{ s: string }>(
        `select sync_state as s from pg_stat_replication where application_name = 'standby'`,
      );
      return rows[0]?.s === 'sync' ? 'sync' : undefined;
    });
    proxy = await PrimaryProxy.start(primary.port);
    fleet = await startFleet({ databaseUrl: proxy.url('cphone'), hosts: size.hosts });
    for (let i = 0; i < size.hosts; i++) await fleet.startAgent(i);
    await fleet.waitForHosts();
    log('primary, synchronous standby, proxy, control plane and agents up', {
      primary: primary.port,
      standby: standby.port,
      proxy: proxy.port,
    });

    // Load: callers creating phones through the API until told to stop.
    const outcomes: Outcome[] = [];
    let stop = false;
    let caller = 0;
    const f = fleet;
    const callers = Array.from({ length: size.callers }, async () => {
      const me = caller++;
      let n = 0;
      while (!stop) {
        const start = Date.now();
        try {
          const id = await createPhone(f, `c${me}-${n++}`);
          outcomes.push({ start, end: Date.now(), id });
        } catch (error) {
          outcomes.push({ start, end: Date.now(), code: Code[ConnectError.from(error).code] ?? 'unknown' });
        }
        await new Promise((r) => setTimeout(r, size.pauseMs));
      }
    });
    await new Promise((r) => setTimeout(r, size.warmupMs));
    const leadsBefore = fleet.tap.count(LEADS);
    const acknowledgedBefore = outcomes.filter((o) => o.id).length;
    if (acknowledgedBefore === 0) throw new Error('no create succeeded before the kill');

    const killedAt = Date.now();
    await primary.kill9();
    log('primary killed', { acknowledgedBefore });
    if (options.detectMs) await new Promise((r) => setTimeout(r, options.detectMs));
    const promoting = standby;
    await promoting.promote();
    proxy.switchTo(promoting.port);
    const promotedMs = Date.now() - killedAt;
    log('standby promoted, proxy switched', { promotedMs });
    const firstWrite = await until(
      'a create sent after the kill to succeed',
      async () => outcomes.find((o) => o.id && o.start >= killedAt),
      60_000,
      20,
    );
    const rtoMs = firstWrite.end - killedAt;
    log('writes are back', { rtoMs });
    await new Promise((r) => setTimeout(r, size.afterMs));
    // The leader's database session died with the primary; it reconnects with backoff (longer the
    // longer the outage) and then takes the lock at its next poll. Wait for that, not a fixed time.
    await until(
      'the control plane to lead again',
      async () => f.plane.cluster.isLeader() && f.tap.count(LEADS, killedAt) > 0,
      60_000,
      50,
    ).catch(() => undefined);
    const regained = f.tap.lines.find((l) => l.msg === LEADS && l.time >= killedAt);
    const leadershipRegainedMs = regained ? regained.time - killedAt : null;
    log('leadership', { leadershipRegainedMs });
    stop = true;
    await Promise.all(callers);

    // Usage: metering stops, every agent's spool drains, and the stored sequences have no gaps.
    for (const agent of fleet.agents) await agent.sampler.stop();
    const agents = fleet.agents;
    const hostIds = fleet.hosts.map((h) => h.hostId);
    // Drained: every agent's cursor at its last sequence. Stalled: no cursor moved for 30 s.
    const cursors = async () => {
      const out: { hostId: string; acked: number; last: number }[] = [];
      for (const [i, agent] of agents.entries()) {
        const hostId = hostIds[i] as string;
        const [row] = await promoting.query<{ acked: number }>(
          'select acked_sequence as acked from usage_cursor where host_id = $1',
          [hostId],
          'cphone',
        );
        out.push({ hostId, acked: Number(row?.acked ?? 0), last: agent.spool.lastSequence });
      }
      return out;
    };
    let usage = await cursors();
    let moved = Date.now();
    const drainStarted = Date.now();
    while (usage.some((c) => c.acked !== c.last) && Date.now() - moved < 30_000) {
      await new Promise((r) => setTimeout(r, 250));
      const now = await cursors();
      if (JSON.stringify(now) !== JSON.stringify(usage)) moved = Date.now();
      usage = now;
    }
    const usageDrainMs = Date.now() - drainStarted;
    const usageUnacknowledged = usage.reduce((n, c) => n + (c.last - c.acked), 0);
    log('usage drained', { usageDrainMs, usage });
    // Lost: a sequence at or below a cursor (acknowledged to the agent, so gone from its spool)
    // with no stored or rejected row.
    let usageSamplesStored = 0;
    let usageSamplesLost = 0;
    for (const c of usage) {
      const [row] = await promoting.query<{ n: string }>(
        `select (select count(*) from usage_sample where host_id = $1 and sequence <= $2)
              + (select count(*) from usage_rejected where host_id = $1 and sequence <= $2) as n`,
        [c.hostId, c.acked],
        'cphone',
      );
      usageSamplesStored += Number(row?.n);
      usageSamplesLost += c.acked - Number(row?.n);
    }

    const acknowledged = outcomes.filter((o) => o.id).map((o) => o.id as string);
    const present = new Set(
      (
        await promoting.query<{ id: string }>(
          'select id from device where id = any($1)',
          [acknowledged],
          'cphone',
        )
      ).map((r) => r.id),
    );
    const rowsLost = acknowledged.filter((id) => !present.has(id)).length;
    const failed = outcomes.filter((o) => o.code);
    const failedCodes: Record<string, number> = {};
    for (const o of failed) failedCodes[o.code as string] = (failedCodes[o.code as string] ?? 0) + 1;
    const leadsAfter = fleet.tap.count(LEADS, killedAt);
    const leaderAtEnd = fleet.plane.cluster.isLeader();
    const poolConnectionsFailed = fleet.tap.count(
      'a pooled database connection failed; the pool replaces it',
    );
    const failures: string[] = [];
    if (rowsLost > 0) failures.push(`${rowsLost} acknowledged creates are missing after the failover`);
    if (usageSamplesLost !== 0) failures.push(`${usageSamplesLost} usage samples missing`);
    if (usageUnacknowledged !== 0)
      failures.push(`${usageUnacknowledged} usage samples still unacknowledged: ${JSON.stringify(usage)}`);
    if (leadsAfter !== 1) failures.push(`leadership taken ${leadsAfter} times after the kill, not once`);
    if (!leaderAtEnd) failures.push('the control plane does not lead at the end');
    if (leadsBefore !== 1) failures.push(`leadership taken ${leadsBefore} times before the kill, not once`);
    return {
      drill: 'failover',
      mode,
      passed: failures.length === 0,
      failures,
      figures: {
        rtoMs,
        promotedMs,
        requestsAcknowledged: acknowledged.length,
        requestsFailed: failed.length,
        failedCodes,
        failedWindowMs:
          failed.length > 0
            ? [
                Math.min(...failed.map((o) => o.start)) - killedAt,
                Math.max(...failed.map((o) => o.end)) - killedAt,
              ]
            : null,
        rowsLost,
        usageSamplesStored,
        usageSamplesLost,
        usageUnacknowledged,
        usageDrainMs,
        leadershipAcquiredBeforeKill: leadsBefore,
        leadershipAcquiredAfterKill: leadsAfter,
        leadershipRegainedMs,
        leaderAtEnd,
        poolConnectionsFailed,
        syncStateBeforeKill,
      },
    };
  } finally {
    await fleet?.close();
    await proxy?.close();
    await standby?.stop('immediate');
    await primary.stop('immediate');
    await rm(dir, { recursive: true, force: true });
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const detect = process.argv.find((a) => a.startsWith('--detect-ms='))?.slice('--detect-ms='.length);
  const detectMs = detect === undefined ? 0 : Number(detect);
  if (!Number.isInteger(detectMs) || detectMs < 0)
    throw new Error(`--detect-ms must be a whole number of ms, not ${detect}`);
  await runAsCommand(() => failoverDrill({ mode: modeFromArgs(), detectMs }));
}
