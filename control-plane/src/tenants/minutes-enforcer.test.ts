// Device minutes enforced (PostgreSQL with DATABASE_URL, else PGlite): usage taken in through the
// intake the gateway uses; the enforcer announces 80 % and 100 % of max_device_minutes once per
// period, starts are refused while the minutes are used up (anywhere up the path), STOP_RUNNING
// stops the running phones, and raising the limit lets starts through again.
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, test } from 'node:test';
import { create, type DescService, fromJsonString } from '@bufbuild/protobuf';
import { timestampFromDate } from '@bufbuild/protobuf/wkt';
import { Code, createClient } from '@connectrpc/connect';
import {
  agentv1,
  DeviceMinutesAction,
  DeviceService,
  ImageService,
  PowerState,
  TenantKind,
  TenantService,
  WebhookEventSchema,
  WebhookEventType,
  WebhookService,
} from '@cphone/proto';
import { bearerTransport } from '../api/bearer-transport.js';
import { connectError } from '../api/test-api.js';
import { insertHosts } from '../placement/testing.js';
import { startTestControlPlane, type TestControlPlane } from '../test-control-plane.js';
import { ingestUsage } from '../usage/intake.js';
import { announceMinutesThreshold, MinutesEnforcer, type MinutesThreshold } from './minutes-enforcer.js';

let testPlane: TestControlPlane;
const client = <S extends DescService>(service: S) =>
  createClient(service, bearerTransport(testPlane.plane.httpUrl, testPlane.plane.bootstrapToken ?? ''));
const db = () => testPlane.plane.deps.db;
let sequence = 0n;
const announced: MinutesThreshold[] = [];
const stoppedHosts: string[] = [];
let enforcer: MinutesEnforcer;
// A webhook receiver on loopback: the bodies it was sent.
const delivered: string[] = [];
const receiver = createServer((req, res) => {
  let body = '';
  req.setEncoding('utf8');
  req.on('data', (chunk: string) => {
    body += chunk;
  });
  req.on('end', () => {
    delivered.push(body);
    res.writeHead(204).end();
  });
});

before(async () => {
  await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
  // The plane's own enforcer never runs in this test: only the one below, on demand.
  testPlane = await startTestControlPlane({
    quotaMinutesIntervalMs: 3_600_000,
    webhookAllowHosts: ['127.0.0.1'],
    webhookPollMs: 50,
  });
  enforcer = new MinutesEnforcer({
    ...testPlane.plane.deps,
    isLeader: () => true,
    desiredChanged: (hostId) => stoppedHosts.push(hostId),
    announce: async (trx, threshold) => {
      // Inside the transaction that records the reading: a row it can see proves that.
      const reading = await trx
        .selectFrom('quota_minutes')
        .select('tenant_id')
        .where('tenant_id', '=', threshold.tenantId)
        .executeTakeFirst();
      assert.ok(reading, 'announced inside the reading’s transaction');
      announced.push(threshold);
      await announceMinutesThreshold(trx, threshold);
    },
  });
  await client(ImageService).createImage({
    imageId: 'img-m',
    image: {
      displayName: 'Android',
      containerImage: 'redroid/redroid:14.0.0-latest',
      archs: ['arm64'],
      defaultSpec: { vcpuMillicores: 1000, memoryMib: 1024, storageGib: 4 },
    },
  });
  await insertHosts(db(), [{ id: 'm-host', vcpu: 100_000, memoryMib: 100_000, devices: 50 }]);
});

after(async () => {
  await testPlane.close();
  receiver.closeAllConnections();
  await new Promise((resolve) => receiver.close(resolve));
});

async function until<T>(what: string, probe: () => T | undefined, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

async function tenant(kind: TenantKind, name: string, parentTenantId = ''): Promise<string> {
  const created = await client(TenantService).createTenant({ kind, displayName: name, parentTenantId });
  return created.tenant?.tenantId ?? '';
}

async function runningDevice(tenantId: string): Promise<string> {
  const created = await client(DeviceService).batchCreateDevices({
    tenantId,
    requests: [{ spec: { imageId: 'img-m' }, desiredPowerState: PowerState.RUNNING }],
  });
  return created.devices[0]?.deviceId ?? '';
}

/** `minutes` running minutes of the device, reported by its host as the agent does. */
async function report(deviceId: string, tenantId: string, minutes: number, from: number): Promise<void> {
  const now = new Date();
  // The minute the device was placed in onwards (a sample before its placement is not its host's),
  // and never more than 5 minutes ahead (the intake's allowance for clock skew).
  const base = Math.floor(now.getTime() / 60_000) * 60_000;
  const samples = Array.from({ length: minutes }, (_, i) =>
    create(agentv1.UsageSampleSchema, {
      sequence: ++sequence,
      deviceId,
      tenantId,
      startTime: timestampFromDate(new Date(base + (from + i) * 60_000)),
      endTime: timestampFromDate(new Date(base + (from + i + 1) * 60_000)),
      vcpuMillicores: 1000,
      memoryMib: 1024,
      storageGib: 4,
      state: agentv1.DeviceState.RUNNING,
    }),
  );
  const intake = await ingestUsage(db(), 'm-host', samples, now);
  assert.equal(intake.inserted, minutes, JSON.stringify(intake));
}

test('80 % and 100 % are announced once; at the limit starts are refused along the path, and a raised limit lets them through', async () => {
  const reseller = await tenant(TenantKind.RESELLER, 'minutes-r');
  const customer = await tenant(TenantKind.CUSTOMER, 'minutes-c', reseller);
  const tenants = client(TenantService);
  await tenants.setQuota({ quota: { tenantId: reseller, maxDeviceMinutes: 10n } });
  const port = (receiver.address() as AddressInfo).port;
  await client(WebhookService).createWebhook({
    requestId: `minutes-${reseller}`,
    tenantId: reseller,
    displayName: 'quota alerts',
    url: `http://127.0.0.1:${port}/quota`,
    eventTypes: [WebhookEventType.QUOTA_THRESHOLD_REACHED],
  });
  const a = await runningDevice(customer);
  const b = await runningDevice(customer);
  await report(a, customer, 4, 0);
  await report(b, customer, 3, 0);
  announced.length = 0;
  let pass = await enforcer.pass();
  assert.deepEqual(announced, [], '7 of 10 minutes announces nothing');
  await report(b, customer, 1, 3);
  pass = await enforcer.pass();
  assert.deepEqual(
    pass.announced.map((t) => [t.tenantId, t.percent, t.usedMinutes, t.limitMinutes]),
    [[reseller, 80, 8, 10]],
  );
  await enforcer.pass();
  assert.equal(announced.length, 1, 'a threshold goes out once per period');

  await report(a, customer, 1, 4);
  await report(b, customer, 1, 4);
  pass = await enforcer.pass();
  assert.deepEqual(
    pass.announced.map((t) => [t.tenantId, t.percent, t.usedMinutes]),
    [[reseller, 100, 10]],
  );
  assert.equal(pass.stopped, 0, 'REFUSE_STARTS (the default) leaves running phones running');
  // The reseller's webhook hears both thresholds, each once.
  const events = await until('two threshold events', () => {
    const got = delivered
      .map((b) => fromJsonString(WebhookEventSchema, b))
      .filter((e) => e.tenantId === reseller);
    return got.length >= 2 ? got : undefined;
  });
  // Deliveries run side by side: arrival order is not the order of the thresholds.
  events.sort(
    (x, y) => (x.quotaThreshold?.thresholdPercent ?? 0) - (y.quotaThreshold?.thresholdPercent ?? 0),
  );
  assert.deepEqual(
    events.map((e) => [
      WebhookEventType[e.type],
      e.quotaThreshold?.thresholdPercent,
      e.quotaThreshold?.dimension,
      e.quotaThreshold?.quotaUsage?.deviceMinutes,
      e.quotaThreshold?.quotaUsage?.quota?.maxDeviceMinutes,
    ]),
    [
      ['QUOTA_THRESHOLD_REACHED', 80, 'max_device_minutes', 8n, 10n],
      ['QUOTA_THRESHOLD_REACHED', 100, 'max_device_minutes', 10n, 10n],
    ],
  );
  // Anything that adds a running phone under the reseller is refused; stopped creates are not.
  await client(DeviceService).stopDevice({ deviceId: a });
  await assert.rejects(
    client(DeviceService).startDevice({ deviceId: a }),
    connectError(
      Code.ResourceExhausted,
      new RegExp(
        `quota of tenant "${reseller}" exceeded: max_device_minutes is 10 device minutes per period, 10 used`,
      ),
    ),
  );
  await assert.rejects(runningDevice(customer), connectError(Code.ResourceExhausted, /max_device_minutes/));
  await client(DeviceService).batchCreateDevices({
    tenantId: customer,
    requests: [{ spec: { imageId: 'img-m' }, desiredPowerState: PowerState.STOPPED }],
  });

  const usage = await tenants.getQuotaUsage({ tenantId: customer });
  assert.equal(usage.quotaUsage?.tenantId, customer);
  assert.equal(usage.quotaUsage?.deviceMinutesExhausted, false, 'the customer has no limit of its own');
  assert.deepEqual(
    usage.ancestors.map((u) => [
      u.tenantId,
      u.deviceMinutes,
      u.quota?.maxDeviceMinutes,
      u.deviceMinutesExhausted,
    ]),
    [
      [reseller, 10n, 10n, true],
      [usage.ancestors[1]?.tenantId, usage.ancestors[1]?.deviceMinutes, undefined, false],
    ],
    'the path to the root, nearest first',
  );
  assert.equal(usage.ancestors.at(-1)?.quota?.tenantId, usage.ancestors.at(-1)?.tenantId);

  await tenants.setQuota({ quota: { tenantId: reseller, maxDeviceMinutes: 100n } });
  await client(DeviceService).startDevice({ deviceId: a });
  await enforcer.pass();
  assert.equal(announced.length, 2, 'a raised limit announces nothing new this period');
});

test('STOP_RUNNING stops the subtree’s running phones at the limit', async () => {
  const customer = await tenant(TenantKind.CUSTOMER, 'minutes-stop');
  const tenants = client(TenantService);
  await assert.rejects(
    tenants.setQuota({
      quota: { tenantId: customer, maxDeviceMinutes: 3n, deviceMinutesAction: 7 as DeviceMinutesAction },
    }),
    connectError(Code.InvalidArgument, /quota.device_minutes_action.*7/),
  );
  const set = await tenants.setQuota({
    quota: {
      tenantId: customer,
      maxDeviceMinutes: 3n,
      deviceMinutesAction: DeviceMinutesAction.STOP_RUNNING,
    },
  });
  assert.equal(set.quota?.deviceMinutesAction, DeviceMinutesAction.STOP_RUNNING);
  const a = await runningDevice(customer);
  const b = await runningDevice(customer);
  await report(a, customer, 2, 0);
  await report(b, customer, 1, 0);
  stoppedHosts.length = 0;
  const pass = await enforcer.pass();
  assert.deepEqual(
    pass.announced.filter((t) => t.tenantId === customer).map((t) => t.percent),
    [80, 100],
    'both thresholds at once when one pass finds the limit reached',
  );
  assert.equal(pass.stopped, 2);
  const rows = await db()
    .selectFrom('device')
    .select(['id', 'desired_power'])
    .where('tenant_id', '=', customer)
    .execute();
  assert.deepEqual(new Set(rows.map((r) => r.desired_power)), new Set(['stopped']));
  assert.deepEqual(stoppedHosts, ['m-host'], 'the host is told at once');
});
