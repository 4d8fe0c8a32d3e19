// The figures the alerts and dashboards in deploy/monitoring read move where the thing happens: a
// real control plane (PostgreSQL with DATABASE_URL, else PGlite), its /metrics read as Prometheus
// would, the API and an agent stream driving each figure.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import type { DescService } from '@bufbuild/protobuf';
import { timestampFromDate } from '@bufbuild/protobuf/wkt';
import { createClient } from '@connectrpc/connect';
import { DeviceService, DeviceState, ImageService, TenantKind, TenantService } from '@cphone/proto';
import { bearerTransport } from './api/bearer-transport.js';
import { createAgentClient, TestAgent } from './gateway/test-agent.js';
import { enrollTestHost, insertTestDevice } from './gateway/testing.js';
import { insertHosts } from './placement/testing.js';
import { startTestControlPlane, type TestControlPlane } from './test-control-plane.js';

let testPlane: TestControlPlane;
const client = <S extends DescService>(service: S) =>
  createClient(service, bearerTransport(testPlane.plane.httpUrl, testPlane.plane.bootstrapToken ?? ''));
const db = () => testPlane.plane.deps.db;

before(async () => {
  testPlane = await startTestControlPlane({ grpcHost: '127.0.0.1' });
  await client(ImageService).createImage({
    imageId: 'img-m',
    image: {
      displayName: 'Android',
      containerImage: 'redroid/redroid:14.0.0-latest',
      archs: ['arm64'],
      defaultSpec: { vcpuMillicores: 1000, memoryMib: 1024, storageGib: 4 },
    },
  });
  await insertHosts(db(), [
    { id: 'm-ready', labels: { pool: 'm' } },
    { id: 'm-gone', labels: { pool: 'm' }, connection: 'unreachable' },
  ]);
});

after(() => testPlane.close());

/** The value of one sample in /metrics: `name{labels}` exactly as Prometheus scrapes it. */
async function sample(name: string, labels: Record<string, string> = {}): Promise<number | undefined> {
  const text = await (await fetch(`${testPlane.plane.httpUrl}/metrics`)).text();
  const want = Object.entries(labels).map(([k, v]) => `${k}="${v}"`);
  for (const line of text.split('\n')) {
    const match = /^([a-z_:]+)(?:\{([^}]*)\})? (\S+)$/.exec(line);
    if (!match || match[1] !== name) continue;
    const have = (match[2] ?? '').split(',');
    if (want.every((w) => have.includes(w))) return Number(match[3]);
  }
  return undefined;
}

const create = (tenantId: string, nodeSelector: Record<string, string> = { pool: 'm' }) =>
  client(DeviceService).batchCreateDevices({
    tenantId,
    requests: [{ spec: { imageId: 'img-m' }, placement: { nodeSelector } }],
  });

test('placements count placed, exhausted (no host fits) and quota (refused by admission) apart', async () => {
  assert.equal(await sample('cphone_placements_total', { outcome: 'quota' }), 0, 'exported before it moves');
  assert.equal(await sample('cphone_quota_rejections_total', { dimension: 'max_devices' }), 0);
  const tenantId =
    (await client(TenantService).createTenant({ kind: TenantKind.CUSTOMER, displayName: 'm' })).tenant
      ?.tenantId ?? '';
  await client(TenantService).setQuota({ quota: { tenantId, maxDevices: 1 } });
  // Within the quota, but no host has the pool: capacity refused it.
  await assert.rejects(create(tenantId, { pool: 'nowhere' }), /cannot be placed/);
  await create(tenantId);
  await assert.rejects(create(tenantId), /max_devices/);
  assert.equal(await sample('cphone_placements_total', { outcome: 'placed' }), 1);
  assert.equal(await sample('cphone_placements_total', { outcome: 'exhausted' }), 1);
  assert.equal(await sample('cphone_placements_total', { outcome: 'quota' }), 1);
  assert.equal(await sample('cphone_quota_rejections_total', { dimension: 'max_devices' }), 1);
});

test('hosts by connection and devices by state are counted in the database on each scrape', async () => {
  const before = (await sample('cphone_hosts', { connection: 'unreachable' })) ?? -1;
  assert.ok(before >= 1, `one unreachable host inserted, ${before} exported`);
  await insertHosts(db(), [{ id: 'm-gone-2', connection: 'unreachable' }]);
  assert.equal(await sample('cphone_hosts', { connection: 'unreachable' }), before + 1);
  const running = (await sample('cphone_devices', { state: 'running' })) ?? 0;
  await insertTestDevice(db(), { hostId: 'm-ready', state: 'running' });
  assert.equal(await sample('cphone_devices', { state: 'running' }), running + 1);
  assert.equal(await sample('cphone_devices', { state: 'deleted' }), undefined, 'deleted rows left out');
});

test('usage intake lag: from a sample’s interval end to its storing, per stored sample', async () => {
  const host = await enrollTestHost(db());
  const ended = new Date(Date.now() - 30_000);
  const device = await insertTestDevice(db(), {
    hostId: host.hostId,
    state: 'running',
    placedAt: new Date(ended.getTime() - 120_000),
  });
  const grpcClient = createAgentClient(testPlane.plane.grpcPort, testPlane.plane.deps.gateway.caPem ?? '');
  const agent = TestAgent.connect(grpcClient, host);
  try {
    await agent.next('welcome');
    const countBefore = (await sample('cphone_usage_intake_lag_seconds_count')) ?? -1;
    const sumBefore = (await sample('cphone_usage_intake_lag_seconds_sum')) ?? -1;
    agent.send({
      case: 'usageReport',
      value: {
        samples: [
          {
            sequence: 1n,
            deviceId: device.deviceId,
            tenantId: device.tenantId,
            startTime: timestampFromDate(new Date(ended.getTime() - 60_000)),
            endTime: timestampFromDate(ended),
            vcpuMillicores: 1000,
            memoryMib: 1024,
            storageGib: 4,
            state: DeviceState.RUNNING,
          },
        ],
      },
    });
    assert.equal((await agent.next('usageAck')).sequence, 1n);
    assert.equal(await sample('cphone_usage_intake_lag_seconds_count'), countBefore + 1);
    const lag = ((await sample('cphone_usage_intake_lag_seconds_sum')) ?? 0) - sumBefore;
    assert.ok(lag >= 30 && lag < 60, `the sample ended 30 s before it was stored: lag ${lag} s`);
    assert.equal(await sample('cphone_usage_intake_lag_seconds_bucket', { le: '15' }), 0);
    assert.equal(await sample('cphone_usage_intake_lag_seconds_bucket', { le: '60' }), countBefore + 1);
  } finally {
    agent.cancel();
    grpcClient.close();
  }
});

test('the API duration histogram has a bucket at each alert threshold (50 ms p99)', async () => {
  await client(ImageService).listImages({});
  const procedure = 'ImageService/ListImages';
  for (const le of ['0.025', '0.05', '0.1'])
    assert.ok(
      ((await sample('cphone_rpc_duration_seconds_bucket', { procedure, code: 'ok', le })) ?? -1) >= 0,
      `bucket le=${le}`,
    );
});

test('the PostgreSQL pool exports its size beside its busy and waiting connections', async (t) => {
  if (!process.env.DATABASE_URL) {
    // PGlite has no pool: a size of 0 and no connections by state.
    assert.equal(await sample('cphone_db_pool_max_connections'), 0);
    assert.equal(await sample('cphone_db_pool_connections', { state: 'busy' }), undefined);
    t.diagnostic('PGlite: no pool');
    return;
  }
  assert.equal(await sample('cphone_db_pool_max_connections'), testPlane.plane.deps.config.dbPoolSize);
  // The scrape's own queries (hosts, devices, webhook queue) start after the pool is read.
  assert.equal(await sample('cphone_db_pool_connections', { state: 'waiting' }), 0);
  assert.ok(((await sample('cphone_db_pool_connections', { state: 'idle' })) ?? -1) >= 1);
});
