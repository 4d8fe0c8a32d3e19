import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { create } from '@bufbuild/protobuf';
import { ExplainPlacementRequestSchema, GpuMode } from '@cphone/proto';
import type { Principal } from '../auth/principal.js';
import { insertTestDevice } from '../gateway/testing.js';
import { SCHEDULING_COLUMNS } from '../store/hosts.js';
import type { Database } from '../store/schema.js';
import type { TestDatabase } from '../store/test-database.js';
import { createTestStore } from '../testing.js';
import { explainPlacement } from './explain.js';
import { hostState, loadHostInputs } from './host-input.js';
import { recheck } from './placer.js';
import type { Ask } from './plan.js';
import { insertHosts } from './testing.js';

let store: TestDatabase<Database>;
const principal: Principal = {
  actor: 'key_t',
  keyId: 'key_t',
  tenantId: 'acme',
  role: 'tenant_user',
  visibleTenants: ['acme'],
};

before(async () => {
  store = await createTestStore();
  const now = new Date();
  await store.db
    .insertInto('tenant')
    .values([
      { id: 'platform', parent_id: null, kind: 'platform', display_name: 'P', update_time: now },
      { id: 'acme', parent_id: 'platform', kind: 'reseller', display_name: 'Acme', update_time: now },
    ])
    .execute();
  await store.db
    .insertInto('image')
    .values({
      id: 'android-14',
      tenant_id: null,
      display_name: 'Android 14',
      image_ref: 'redroid/redroid:14',
      arches: JSON.stringify(['arm64']),
      default_spec: JSON.stringify({ vcpuMillicores: 2000, memoryMib: 4096, storageGib: 32 }),
      android_version: '14',
      required_labels: '{}',
      min_vcpu_millicores: 0,
      min_memory_mib: 0,
      min_storage_gib: 0,
      update_time: now,
    })
    .execute();
  await insertHosts(store.db, [
    { id: 'h-full', labels: { zone: 'a' }, vcpu: 1000 },
    { id: 'h-big', labels: { zone: 'a' }, vcpu: 32_000, memoryMib: 65_536 },
    { id: 'h-small', labels: { zone: 'b' } },
    { id: 'h-gpu', labels: { zone: 'a', gpu: 'true' } },
    { id: 'h-x86', arch: 'x86_64', labels: { zone: 'a' } },
    { id: 'h-new', connection: 'new', labels: { zone: 'a' } },
    { id: 'h-cordoned', cordoned: true, labels: { zone: 'a' } },
    { id: 'h-odd', arch: 'riscv64' },
  ]);
});

after(() => store.close());

test('host state for the scheduler: ready only when its stream is open, not cordoned and not draining', () => {
  const base = { connection: 'ready', cordoned: false, drain_state: null, gateway_replica: 'r1' } as const;
  assert.equal(hostState(base), 'ready');
  assert.equal(
    hostState({ ...base, gateway_replica: null }),
    'disconnected',
    'heartbeating but no stream now',
  );
  assert.equal(hostState({ ...base, connection: 'new' }), 'offline');
  assert.equal(hostState({ ...base, connection: 'unreachable', cordoned: true }), 'unreachable');
  assert.equal(hostState({ ...base, drain_state: 'in_progress', cordoned: true }), 'draining');
  assert.equal(hostState({ ...base, drain_state: 'completed', cordoned: true }), 'cordoned');
  assert.equal(
    hostState({ ...base, drain_state: 'completed' }),
    'ready',
    'an uncordoned host takes phones again',
  );
});

test('the loader maps rows to scheduler inputs, normalises arch names and counts the tenant’s devices', async () => {
  await insertTestDevice(store.db, {
    hostId: 'h-small',
    tenantId: 'acme',
    deviceId: 'dev_loader',
    state: 'running',
    vcpuMillicores: 1,
    memoryMib: 1,
    storageGib: 1,
  });
  const inputs = await loadHostInputs(store.db, { tenantId: 'acme' });
  const byId = new Map(inputs.map((h) => [h.id, h]));
  assert.ok(!byId.has('h-odd'), 'an architecture no image runs on is left out');
  assert.equal(byId.get('h-x86')?.arch, 'amd64');
  assert.equal(byId.get('h-new')?.state, 'offline');
  assert.equal(byId.get('h-cordoned')?.state, 'cordoned');
  assert.deepEqual(byId.get('h-small')?.tenantDevices, { acme: 1 });
  assert.equal(byId.get('h-big')?.tenantDevices, undefined);
  assert.deepEqual(byId.get('h-big')?.capacity, {
    vcpuMillicores: 32_000,
    memoryMib: 65_536,
    storageGib: 1000,
    devices: 16,
  });
  const pinned = await loadHostInputs(store.db, { hostIds: ['h-gpu'] });
  assert.deepEqual(
    pinned.map((h) => h.id),
    ['h-gpu'],
  );
  await store.db.deleteFrom('device').where('id', '=', 'dev_loader').execute();
});

test('the re-check on locked rows names the host and the resource that ran short', async () => {
  const rows = await store.db
    .selectFrom('host')
    .select(SCHEDULING_COLUMNS)
    .where('id', 'in', ['h-full', 'h-new'])
    .execute();
  const ask = {
    ask: { resources: { vcpuMillicores: 800, memoryMib: 1024, storageGib: 10, devices: 1 } } as Ask,
    label: '',
  };
  assert.equal(recheck(rows, ['h-full'], [ask], false), '');
  assert.equal(
    recheck(rows, ['h-full', 'h-full'], [ask, ask], false),
    'host h-full is short of vcpu: needs 1600m, 1000m free',
  );
  assert.equal(recheck(rows, ['h-new'], [ask], false), 'host h-new is offline');
  assert.equal(recheck(rows, ['h-gone'], [ask], false), 'host h-gone is gone');
  const away = rows.map((r) => ({ ...r, gateway_replica: null }));
  assert.equal(recheck(away, ['h-full'], [ask], false), 'host h-full is disconnected');
  assert.equal(
    recheck(away, ['h-full'], [ask], true),
    '',
    'the fallback takes a host briefly without a stream',
  );
});

test('explainPlacement explains every host and names what a create would choose', async () => {
  const response = await explainPlacement(
    store.db,
    principal,
    create(ExplainPlacementRequestSchema, {
      spec: { imageId: 'android-14' },
      placement: { nodeSelector: { zone: 'a' } },
      count: 2,
    }),
  );
  assert.equal(response.feasible, true);
  assert.equal(response.chosenHostIds.length, 2);
  const byId = new Map(response.hosts.map((h) => [h.hostId, h]));
  assert.equal(byId.size, 7);
  assert.equal(byId.get('h-big')?.feasible, true);
  assert.ok((byId.get('h-big')?.finalScore ?? -1) >= 0);
  assert.deepEqual(
    byId.get('h-big')?.scores.map((s) => s.scorer),
    ['binpack'],
  );
  assert.equal(byId.get('h-full')?.filterFailures[0]?.filter, 'vcpu');
  assert.match(byId.get('h-full')?.filterFailures[0]?.message ?? '', /asks 2000m, free 1000m/);
  assert.equal(byId.get('h-small')?.filterFailures[0]?.filter, 'label_selector');
  assert.equal(byId.get('h-x86')?.filterFailures[0]?.filter, 'architecture');
  assert.equal(byId.get('h-new')?.filterFailures[0]?.filter, 'host_ready');
  const firstInfeasible = response.hosts.findIndex((h) => !h.feasible);
  assert.ok(
    response.hosts.slice(firstInfeasible).every((h) => !h.feasible),
    'feasible hosts come first',
  );

  const gpu = await explainPlacement(
    store.db,
    principal,
    create(ExplainPlacementRequestSchema, { spec: { imageId: 'android-14', gpuMode: GpuMode.HOST } }),
  );
  assert.deepEqual(gpu.chosenHostIds, ['h-gpu'], 'GPU_MODE_HOST needs a host labelled gpu=true');

  const none = await explainPlacement(
    store.db,
    principal,
    create(ExplainPlacementRequestSchema, { spec: { imageId: 'android-14', vcpuMillicores: 64_000 } }),
  );
  assert.equal(none.feasible, false);
  assert.match(none.message, /fits no host/);
  await assert.rejects(
    explainPlacement(
      store.db,
      principal,
      create(ExplainPlacementRequestSchema, { spec: { imageId: 'android-14' }, count: 101 }),
    ),
    /invalid count 101/,
  );
  await assert.rejects(
    explainPlacement(
      store.db,
      principal,
      create(ExplainPlacementRequestSchema, { spec: { imageId: 'nope' } }),
    ),
    /image \(spec.image_id\) "nope" not found/,
  );
});
