// The ledger property: after every step of a random sequence of creates, deletions (confirmed by the
// agent, by its inventory, or never told to it), agent reports, losses and returns, MIGRATE and STOP
// drains, and forced host deletions, every host's allocation equals the sum of the devices on it.
// Each step runs the production path of its operation (the planner and applier, the observed-state
// handler an agent's reports go through, the loss and the drainer); only what an agent or the clock
// would do (reports, silence) is written by the test. PostgreSQL with DATABASE_URL, else PGlite.
// A failure prints the seed: LEDGER_SEED=<seed> replays it.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { create } from '@bufbuild/protobuf';
import { agentv1, CreateDeviceRequestSchema, DeviceState } from '@cphone/proto';
import pino from 'pino';
import { systemClock } from '../clock.js';
import { draftDevices } from '../devices/drafts.js';
import { requestDeletion } from '../devices/lifecycle.js';
import { markHostDevicesLost } from '../devices/loss.js';
import { applyObserved, completeUnseenDeletions } from '../devices/observed.js';
import { DomainError } from '../errors.js';
import { startDrain } from '../hosts/drain.js';
import { Drainer } from '../hosts/drainer.js';
import { forceRemoveDevices } from '../hosts/force-delete.js';
import { createMetrics } from '../metrics.js';
import { lockDevices } from '../store/devices.js';
import { deleteHost, endDrain, lockHosts, selectSchedulingRows } from '../store/hosts.js';
import type { Database } from '../store/schema.js';
import type { TestDatabase } from '../store/test-database.js';
import { createTestStore } from '../testing.js';
import { sessionFleetFeed } from './fleet-feed.js';
import { Planner } from './planner.js';
import { allocationReport, insertHosts, seedTenantsAndImage, TEST_PRINCIPAL } from './testing.js';

const logger = pino({ level: 'silent' });
let store: TestDatabase<Database>;
let planner: Planner;
let drainer: Drainer;
const principal = TEST_PRINCIPAL;

before(async () => {
  store = await createTestStore();
  await seedTenantsAndImage(store.db);
  const base = { db: store.db, clock: systemClock, logger, metrics: createMetrics() };
  planner = new Planner({ ...base, desiredChanged: () => {}, feed: sessionFleetFeed(() => store.session()) });
  drainer = new Drainer({ ...base, planner, isLeader: () => true, desiredChanged: () => {} });
});

after(async () => {
  await planner?.close();
  await store?.close();
});

/** mulberry32: small, seeded, good enough to pick operations. */
function random(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const db = () => store.db;

async function devicesWhere(states: readonly string[]) {
  return db()
    .selectFrom('device')
    .selectAll()
    .where('state', 'in', states as never)
    .orderBy('id')
    .execute();
}

/** The agent of `hostId` reports `deviceId` in `state`, through the handler the gateway calls. */
async function report(hostId: string, deviceId: string, state: DeviceState): Promise<void> {
  const observed = await applyObserved(
    db(),
    hostId,
    [create(agentv1.ObservedDeviceSchema, { deviceId, state, specRevision: 1n })],
    { fullInventory: false, now: new Date() },
  );
  planner.settle(observed.applied);
}

let hostSerial = 0;
async function addHost(): Promise<void> {
  hostSerial++;
  await insertHosts(db(), [
    { id: `lh-${String(hostSerial).padStart(3, '0')}`, vcpu: 8000, memoryMib: 8192, devices: 6 },
  ]);
}

type Step = (pick: () => number) => Promise<string>;

const steps: [weight: number, Step][] = [
  [
    5,
    async (pick) => {
      const count = 1 + Math.floor(pick() * 4);
      try {
        await planner.submit({
          run: async ({ trx, apply }) => {
            const creates = await draftDevices(
              trx,
              principal,
              'acme',
              Array.from({ length: count }, () =>
                create(CreateDeviceRequestSchema, { spec: { imageId: 'img' } }),
              ),
            );
            return apply({ tenantId: 'acme', creates });
          },
        });
        return `create ${count}`;
      } catch (error) {
        if (!(error instanceof DomainError)) throw error;
        return `create ${count} refused`;
      }
    },
  ],
  [
    3,
    async (pick) => {
      const live = await devicesWhere(['scheduled', 'creating', 'running', 'stopped', 'error', 'lost']);
      const device = live[Math.floor(pick() * live.length)];
      if (!device) return 'delete: none';
      await db()
        .transaction()
        .execute(async (trx) => {
          const [row] = await lockDevices(trx, [device.id]);
          if (row) await requestDeletion(trx, row, new Date());
        });
      return `delete ${device.id}`;
    },
  ],
  [
    3,
    async (pick) => {
      const deleting = await devicesWhere(['deleting']);
      const device = deleting[Math.floor(pick() * deleting.length)];
      if (!device?.host_id) return 'finish deletion: none';
      const how = pick();
      if (how < 0.5) await report(device.host_id, device.id, DeviceState.DELETED);
      else if (how < 0.8) {
        // The agent's Hello inventory no longer holds it.
        const observed = await applyObserved(db(), device.host_id, [], {
          fullInventory: true,
          now: new Date(),
        });
        planner.settle(observed.applied);
      } else {
        planner.settle(
          (await completeUnseenDeletions(db(), device.host_id, [device.id], new Date())).applied,
        );
      }
      return `finish deletion of ${device.id} (${how.toFixed(2)})`;
    },
  ],
  [
    4,
    async (pick) => {
      const placed = await devicesWhere([
        'scheduled',
        'creating',
        'booting',
        'running',
        'stopped',
        'error',
        'lost',
      ]);
      const device = placed[Math.floor(pick() * placed.length)];
      if (!device?.host_id) return 'report: none';
      const state =
        [DeviceState.RUNNING, DeviceState.STOPPED, DeviceState.ERROR][Math.floor(pick() * 3)] ??
        DeviceState.RUNNING;
      await report(device.host_id, device.id, state);
      return `report ${device.id} ${DeviceState[state]}`;
    },
  ],
  [
    1,
    async (pick) => {
      const hosts = await db().selectFrom('host').select('id').where('connection', '=', 'ready').execute();
      const host = hosts[Math.floor(pick() * hosts.length)];
      if (!host) return 'loss: none';
      // The host went silent past the TTL and the grace (what the liveness monitor's clock sees).
      const long = new Date(Date.now() - 3_600_000);
      await db()
        .updateTable('host')
        .set({ connection: 'unreachable', unreachable_since: long, gateway_replica: null })
        .where('id', '=', host.id)
        .execute();
      const lost = await markHostDevicesLost(db(), host.id, new Date(), new Date());
      return `loss of ${host.id} (${lost.length} lost)`;
    },
  ],
  [
    1,
    async (pick) => {
      const hosts = await db()
        .selectFrom('host')
        .select('id')
        .where('connection', '=', 'unreachable')
        .execute();
      const host = hosts[Math.floor(pick() * hosts.length)];
      if (!host) return 'return: none';
      await db()
        .updateTable('host')
        .set({ connection: 'ready', unreachable_since: null, gateway_replica: 'test-replica' })
        .where('id', '=', host.id)
        .execute();
      const held = await db()
        .selectFrom('device')
        .select('id')
        .where('host_id', '=', host.id)
        .where('state', '=', 'lost')
        .execute();
      const observed = await applyObserved(
        db(),
        host.id,
        held.map((d) =>
          create(agentv1.ObservedDeviceSchema, {
            deviceId: d.id,
            state: DeviceState.RUNNING,
            specRevision: 1n,
          }),
        ),
        { fullInventory: true, now: new Date() },
      );
      planner.settle(observed.applied);
      return `return of ${host.id}`;
    },
  ],
  [
    2,
    async (pick) => {
      const hosts = await db().selectFrom('host').select('id').where('drain_state', 'is', null).execute();
      const host = hosts[Math.floor(pick() * hosts.length)];
      if (!host) return 'drain: none';
      const mode = pick() < 0.7 ? 'migrate' : 'stop';
      await db()
        .transaction()
        .execute(async (trx) => {
          await lockHosts(trx, [host.id]);
          await startDrain(trx, host.id, { mode, reason: 'property', deadline: undefined, now: new Date() });
        });
      // Its agent stops what the drain holds.
      const on = await db()
        .selectFrom('device')
        .select('id')
        .where('host_id', '=', host.id)
        .where('state', 'in', ['running', 'scheduled', 'creating', 'booting'])
        .execute();
      for (const d of on) await report(host.id, d.id, DeviceState.STOPPED);
      const pass = await drainer.pass();
      if (pick() < 0.3) await endDrain(db(), host.id, 'cancelled', new Date());
      return `drain ${mode} ${host.id}: moved ${pass.moved.length}, failed ${pass.failed.length}`;
    },
  ],
  [
    1,
    async () => {
      const pass = await drainer.pass();
      return `drainer pass: moved ${pass.moved.length}, ended ${pass.ended.length}`;
    },
  ],
  [
    0.5,
    async (pick) => {
      const hosts = await db().selectFrom('host').select('id').execute();
      const host = hosts[Math.floor(pick() * hosts.length)];
      if (!host) return 'force delete: none';
      const applied = await db()
        .transaction()
        .execute(async (trx) => {
          const released = await forceRemoveDevices(trx, host.id, new Date());
          await lockHosts(trx, [host.id]);
          await deleteHost(trx, host.id);
          return released;
        });
      planner.settle(applied);
      await addHost();
      return `force delete ${host.id}`;
    },
  ],
];

test('the ledger equals the sum of its phones after every step of a random sequence', async () => {
  for (let i = 0; i < 5; i++) await addHost();
  const seed = Number(process.env.LEDGER_SEED ?? Date.now() % 1_000_000);
  const pick = random(seed);
  const total = steps.reduce((sum, [w]) => sum + w, 0);
  const trail: string[] = [];
  for (let i = 0; i < 80; i++) {
    const roll = pick() * total;
    let acc = 0;
    const step = steps.find(([w]) => {
      acc += w;
      return roll < acc;
    })?.[1];
    if (!step) break;
    trail.push(await step(pick));
    const where = `seed ${seed}, step ${i} (${trail.at(-1)})`;
    for (const h of await allocationReport(db())) {
      assert.deepEqual(
        h.allocated,
        h.devices,
        `${where}: host ${h.id} allocation differs from its phones\n${trail.join('\n')}`,
      );
    }
    // The planner's fleet view, caught up with the change feed, holds every host row as the table
    // does: the planner's own plans, the settled reports, and the writes the test makes itself.
    await planner.fleet.catchUp();
    const rows = await selectSchedulingRows(db());
    const view = planner.fleet.view;
    assert.equal(view.size, rows.length, `${where}: hosts in the view`);
    for (const row of rows) {
      assert.deepEqual(view.row(row.id), row, `${where}: host ${row.id} in the view`);
      const index = view.snapshot().indexById.get(row.id) ?? -1;
      assert.equal(
        view.snapshot().allocated.slots[index],
        row.allocated_devices,
        `${where}: ${row.id} slots`,
      );
    }
  }
  const kinds = new Set(trail.map((t) => t.split(' ')[0]));
  assert.ok(kinds.size >= 5, `the sequence exercised several kinds of step: ${[...kinds].join(', ')}`);
  // ...and it never read the fleet whole after its first read.
  assert.deepEqual(planner.fleet.loads, { start: 1, gap: 0, unconfirmed: 0, rollback: 0 });
});
