import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';
import type { PoolStats } from './store/database.js';
import type { DeviceStateName, HostConnection } from './store/schema.js';

/** What the fleet holds now, counted in the database on each scrape (every replica sees the same). */
export interface FleetCounts {
  hosts: Partial<Record<HostConnection, number>>;
  devices: Partial<Record<DeviceStateName, number>>;
}

const HOST_CONNECTIONS: readonly HostConnection[] = ['new', 'ready', 'unreachable'];

/** Exports each known label value at 0 before it first moves, so rates and alerts see a series. */
function zeroed<T extends Counter<string>>(counter: T, label: string, values: readonly string[]): T {
  for (const value of values) counter.inc({ [label]: value }, 0);
  return counter;
}

/** The control plane's metrics, on a registry of its own so several instances can share a process. */
export function createMetrics() {
  const registry = new Registry();
  let poolStats: (() => PoolStats) | undefined;
  let webhookQueue: (() => Promise<number>) | undefined;
  let fleet: Promise<FleetCounts> | undefined;
  let fleetCounts: (() => Promise<FleetCounts>) | undefined;
  // The hosts and devices gauges share one count per scrape. A scrape calls every collect() in one
  // synchronous pass; the queries start after it (a microtask later), so the pool's figures, read
  // in that pass, do not count the scrape's own queries as checkouts waiting.
  const afterPass = <T>(query: () => Promise<T>) => Promise.resolve().then(query);
  const countFleet = () => {
    const counts = fleetCounts;
    if (!counts) return undefined;
    fleet ??= afterPass(counts).finally(() => setTimeout(() => (fleet = undefined), 0));
    return fleet;
  };
  registry.setDefaultLabels({ service: 'control-plane' });
  collectDefaultMetrics({ register: registry, eventLoopMonitoringPrecision: 100 });
  return {
    registry,
    rpcDuration: new Histogram({
      name: 'cphone_rpc_duration_seconds',
      help: 'Connect-RPC handling time by procedure and code',
      labelNames: ['procedure', 'code'] as const,
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 5],
      registers: [registry],
    }),
    agentStreams: new Gauge({
      name: 'cphone_agent_streams',
      help: 'Agent streams currently connected',
      registers: [registry],
    }),
    agentStreamEnds: new Counter({
      name: 'cphone_agent_stream_ends_total',
      help: 'Agent streams ended, by gRPC status (SUPERSEDED streams end ABORTED, slow agents RESOURCE_EXHAUSTED)',
      labelNames: ['code'] as const,
      registers: [registry],
    }),
    hostConnectionChanges: zeroed(
      new Counter({
        name: 'cphone_host_connection_changes_total',
        help: 'Host connection state changes (ready, unreachable)',
        labelNames: ['to'] as const,
        registers: [registry],
      }),
      'to',
      ['ready', 'unreachable'],
    ),
    hosts: new Gauge({
      name: 'cphone_hosts',
      help: 'Enrolled hosts by connection state (new, ready, unreachable), counted in the database',
      labelNames: ['connection'] as const,
      registers: [registry],
      async collect() {
        const counts = await countFleet();
        if (!counts) return;
        for (const connection of HOST_CONNECTIONS) this.set({ connection }, counts.hosts[connection] ?? 0);
      },
    }),
    devices: new Gauge({
      name: 'cphone_devices',
      help: 'Devices by state, for the states some device is in (deleted ones left out), counted in the database',
      labelNames: ['state'] as const,
      registers: [registry],
      async collect() {
        const counts = await countFleet();
        if (!counts) return;
        // Only the states some device is in: a state left since the last scrape goes away.
        this.reset();
        for (const [state, n] of Object.entries(counts.devices)) this.set({ state }, n);
      },
    }),
    devicesLost: new Counter({
      name: 'cphone_devices_lost_total',
      help: 'Devices marked lost because their host stayed unreachable past the grace',
      registers: [registry],
    }),
    clusterMessages: new Counter({
      name: 'cphone_cluster_messages_total',
      help: 'Messages between control-plane replicas, by direction and carrier (notify inline, relay table)',
      labelNames: ['direction', 'via'] as const,
      registers: [registry],
    }),
    signIns: new Counter({
      name: 'cphone_sign_ins_total',
      help: 'Web sign-ins (SignIn and AcceptInvitation) by outcome: ok, wrong_credentials, throttled, invalid',
      labelNames: ['outcome'] as const,
      registers: [registry],
    }),
    authCache: new Counter({
      name: 'cphone_auth_cache_total',
      help: 'API key authentications answered from the cache (hit) or the database (miss)',
      labelNames: ['outcome'] as const,
      registers: [registry],
    }),
    rateLimitRefusals: new Counter({
      name: 'cphone_rate_limit_refusals_total',
      help: 'API calls refused by the rate limiter, by the bucket that ran dry: key (API key or user) or tenant',
      labelNames: ['scope'] as const,
      registers: [registry],
    }),
    rateLimitLeases: new Counter({
      name: 'cphone_rate_limit_leases_total',
      help: 'Token leases this replica took from the shared rate limit buckets (one query each)',
      registers: [registry],
    }),
    auditRowsDropped: new Counter({
      name: 'cphone_audit_rows_dropped_total',
      help: 'Audit rows of anonymous or rate-limited calls dropped because the audit queue was half full',
      registers: [registry],
    }),
    clusterLeader: new Gauge({
      name: 'cphone_cluster_leader',
      help: '1 while this replica holds the leadership and runs the periodic jobs',
      registers: [registry],
    }),
    agentMessages: new Counter({
      name: 'cphone_agent_messages_total',
      help: 'Messages received from agents by kind',
      labelNames: ['kind'] as const,
      registers: [registry],
    }),
    commands: new Counter({
      name: 'cphone_agent_commands_total',
      help: 'Commands sent to agents by kind and outcome',
      labelNames: ['kind', 'outcome'] as const,
      registers: [registry],
    }),
    placements: zeroed(
      new Counter({
        name: 'cphone_placements_total',
        help: 'Devices asked for by BatchCreateDevices, by outcome: placed, exhausted (no host fits), quota (refused by a tenant quota or spent device minutes)',
        labelNames: ['outcome'] as const,
        registers: [registry],
      }),
      'outcome',
      ['placed', 'exhausted', 'quota'],
    ),
    planGroups: new Histogram({
      name: 'cphone_plan_group_jobs',
      help: 'Plans committed together in one transaction by the group-commit planner',
      buckets: [1, 2, 4, 8, 16, 32, 64],
      registers: [registry],
    }),
    fleetViewLoads: new Counter({
      name: 'cphone_fleet_view_loads_total',
      help: 'Whole-fleet reads by the placement view: start, gap (feed lost), unconfirmed (barrier unanswered), rollback',
      labelNames: ['reason'] as const,
      registers: [registry],
    }),
    placementDecisionSeconds: new Counter({
      name: 'cphone_placement_decision_seconds_total',
      help: 'Time the plan applier spent deciding on the fleet view: placing, re-checking, applying the rows written',
      registers: [registry],
    }),
    fleetViewRereads: new Counter({
      name: 'cphone_fleet_view_rereads_total',
      help: 'Host rows the placement view re-read after a change notice (other replicas, agents, operators)',
      registers: [registry],
    }),
    quotaRejections: new Counter({
      name: 'cphone_quota_rejections_total',
      help: 'Plans refused by quota admission, by the dimension whose limit they would pass',
      labelNames: ['dimension'] as const,
      registers: [registry],
    }),
    usageSamples: zeroed(
      new Counter({
        name: 'cphone_usage_samples_total',
        help: 'Usage samples by intake result: inserted, duplicate, rejected (malformed), foreign (device not on the host), tenant_mismatch',
        labelNames: ['result'] as const,
        registers: [registry],
      }),
      'result',
      ['inserted', 'duplicate', 'rejected', 'foreign', 'tenant_mismatch'],
    ),
    usageIntakeLag: new Histogram({
      name: 'cphone_usage_intake_lag_seconds',
      help: 'From the end of a usage sample’s interval to its storing by the intake, per stored sample',
      buckets: [1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600],
      registers: [registry],
    }),
    dbPoolWait: new Histogram({
      name: 'cphone_db_pool_wait_seconds',
      help: 'Time each query waited for a connection from the PostgreSQL pool',
      buckets: [0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1],
      registers: [registry],
    }),
    dbPoolConnections: new Gauge({
      name: 'cphone_db_pool_connections',
      help: 'PostgreSQL pool connections by state (idle, busy) and checkouts waiting for one',
      labelNames: ['state'] as const,
      registers: [registry],
      collect() {
        const stats = poolStats?.();
        if (!stats) return;
        this.set({ state: 'idle' }, stats.idle);
        this.set({ state: 'busy' }, stats.total - stats.idle);
        this.set({ state: 'waiting' }, stats.waiting);
      },
    }),
    dbPoolMax: new Gauge({
      name: 'cphone_db_pool_max_connections',
      help: 'Connections the PostgreSQL pool may open (CPHONE_DB_POOL_SIZE); 0 on embedded PGlite, which has no pool',
      registers: [registry],
      collect() {
        const stats = poolStats?.();
        if (stats) this.set(stats.max);
      },
    }),
    webhookDeliveries: new Counter({
      name: 'cphone_webhook_deliveries_total',
      help: 'Webhook delivery attempts by outcome (succeeded, http_error, network_error, refused), and deliveries given up (failed) or dropped (webhook disabled or deleted)',
      labelNames: ['outcome'] as const,
      registers: [registry],
    }),
    webhookDeliverySeconds: new Histogram({
      name: 'cphone_webhook_delivery_seconds',
      help: 'Webhook delivery attempt time until the response headers (or the error), by outcome',
      labelNames: ['outcome'] as const,
      buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers: [registry],
    }),
    webhookQueueDepth: new Gauge({
      name: 'cphone_webhook_queue_depth',
      help: 'Webhook deliveries pending (due now or waiting for a retry), over all replicas',
      registers: [registry],
      async collect() {
        const depth = webhookQueue;
        if (depth) this.set(await afterPass(depth));
      },
    }),
    /** Reports the pending webhook deliveries on every scrape. */
    watchWebhookQueue(depth: () => Promise<number>): void {
      webhookQueue = depth;
    },
    /** Reports the hosts by connection and the devices by state on every scrape. */
    watchFleet(counts: () => Promise<FleetCounts>): void {
      fleetCounts = counts;
    },
    /** Reports the pool's connections on every scrape. */
    watchPool(stats: () => PoolStats): void {
      poolStats = stats;
    },
  };
}

export type Metrics = ReturnType<typeof createMetrics>;
