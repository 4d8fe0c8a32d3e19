// The fleet view follows the fleet without reading it whole: this replica's commits, another
// replica's placements, agents' reports and a capacity freed elsewhere all reach it as deltas, and
// only a gap in the change feed makes it read everything again. Each test counts the whole reads
// (FleetCache.loads). PostgreSQL with DATABASE_URL, else PGlite.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { create } from '@bufbuild/protobuf';
import { CreateDeviceRequestSchema } from '@cphone/proto';
import { waitFor } from '@cphone/proto/testing';
import { sql } from 'kysely';
import pino from 'pino';
import { systemClock } from '../clock.js';
import { Cluster } from '../cluster/cluster.js';
import { draftDevices } from '../devices/drafts.js';
import { ResourceExhaustedError } from '../errors.js';
import { createMetrics } from '../metrics.js';
import {
  markUnreachable,
  recordHello,
  releaseStreams,
  selectSchedulingRows,
  writeHeartbeats,
} from '../store/hosts.js';
import type { Database } from '../store/schema.js';
import { defaultDatabaseKind, type TestDatabase } from '../store/test-database.js';
import { createTestStore } from '../testing.js';
import type { AppliedPlan } from './applier.js';
import { clusterFleetFeed, type FleetFeed, sessionFleetFeed } from './fleet-feed.js';
import { Planner } from './planner.js';
import { insertHosts, seedTenantsAndImage, TEST_PRINCIPAL, TEST_REPLICA } from './testing.js';

const logger = pino({ level: 'silent' });
let store: TestDatabase<Database>;
const planners: Planner[] = [];
const principal = TEST_PRINCIPAL;

before(async () => {
  store = await createTestStore();
  await seedTenantsAndImage(store.db);
});

after(async () => {
  for (const planner of planners) await planner.close();
  await store?.close();
});

/** A replica's planner on the shared database, with a change feed of its own. */
function replica(feed: FleetFeed = sessionFleetFeed(() => store.session())): Planner {
  const planner = new Planner({
    db: store.db,
    clock: systemClock,
    logger,
    metrics: createMetrics(),
    desiredChanged: () => {},
    feed,
  });
  planners.push(planner);
  return planner;
}

/** `count` devices of `vcpu` millicores for acme, through the planner as a create goes. */
function createOn(planner: Planner, count: number, vcpu = 1000): Promise<AppliedPlan> {
  return planner.submit({
    run: async ({ trx, apply }) => {
      const creates = await draftDevices(
        trx,
        principal,
        'acme',
        Array.from({ length: count }, () =>
          create(CreateDeviceRequestSchema, { spec: { imageId: 'img', vcpuMillicores: vcpu } }),
        ),
      );
      return apply({ tenantId: 'acme', creates });
    },
  });
}

/** Every host row of `ids` as the table holds it, and as the planner's view holds it. */
async function compare(planner: Planner, ids: readonly string[]) {
  const rows = await selectSchedulingRows(store.db, ids);
  return {
    table: rows.map((r) => [r.id, r.allocated_devices, r.change_seq]),
    view: rows.map((r) => [
      r.id,
      planner.fleet.view.row(r.id)?.allocated_devices,
      planner.fleet.view.seqOf(r.id),
    ]),
  };
}

/** A feed that keeps every notice it delivers. */
function countingFeed(): FleetFeed & { notices: string[] } {
  const inner = sessionFleetFeed(() => store.session());
  const notices: string[] = [];
  return {
    notices,
    subscribe: (notice, gap) =>
      inner.subscribe((payload) => {
        notices.push(payload);
        notice(payload);
      }, gap),
    barrier: () => inner.barrier(),
    close: () => inner.close(),
  };
}

const noGap = { start: 1, gap: 0, unconfirmed: 0, rollback: 0 };

test('this replica’s commits and another replica’s placements reach the view as deltas', async () => {
  await insertHosts(store.db, [
    { id: 'r-1', vcpu: 2000, devices: 2 },
    { id: 'r-2', vcpu: 2000, devices: 2 },
  ]);
  const a = replica();
  const b = replica();
  const placed = await createOn(a, 1);
  // On the view as soon as the create resolves: the applier put its written rows there.
  const host = placed.hostOf[0] ?? '';
  assert.equal(a.fleet.view.row(host)?.allocated_devices, 1);
  await a.fleet.catchUp();
  assert.equal(a.fleet.rereads, 0, 'its own notices are known already: nothing re-read');

  // Replica b fills what is left of that host; a learns of it from the feed.
  const other = await createOn(b, 1);
  assert.equal(other.hostOf[0], host, 'bin-pack fills the host a started');
  await a.fleet.catchUp();
  const seen = await compare(a, ['r-1', 'r-2']);
  assert.deepEqual(seen.view, seen.table);
  assert.ok(a.fleet.rereads >= 1, 'b’s placement was re-read');
  // So a's next create goes straight to the other host, in one round (no conflict to re-check).
  const next = await createOn(a, 1);
  assert.notEqual(next.hostOf[0], host);
  assert.equal(next.attempts, 1);
  assert.deepEqual(a.fleet.loads, noGap);
  assert.deepEqual(b.fleet.loads, noGap);
});

test('agent reports (Hello, disconnect, silence, heartbeats) and new hosts reach the view as deltas', async () => {
  await insertHosts(store.db, [{ id: 'g-1', vcpu: 4000, devices: 4 }]);
  const feed = countingFeed();
  const planner = replica(feed);
  await planner.fleet.ready();
  const state = async () => {
    await planner.fleet.catchUp();
    return planner.fleet.view.input('g-1')?.state;
  };
  // The agent says Hello on this replica with a bigger capacity.
  await store.db.transaction().execute((trx) =>
    recordHello(
      trx,
      'g-1',
      {
        agentVersion: 't',
        protocolVersion: 1,
        streamEndpoint: '',
        runtimeKind: 'sim',
        hostname: 'g-1',
        kernelVersion: '',
        agentInstanceId: 'i1',
        agentLabels: {},
        arch: 'arm64',
        capacity: { vcpuMillicores: 8000, memoryMib: 32_768, storageGib: 1000, devices: 8 },
      },
      TEST_REPLICA,
      new Date(),
    ),
  );
  assert.equal(await state(), 'ready');
  assert.equal(planner.fleet.view.input('g-1')?.capacity.devices, 8);
  await releaseStreams(store.db, TEST_REPLICA, 'g-1');
  assert.equal(await state(), 'disconnected');
  const cutoff = new Date(Date.now() + 60_000);
  await markUnreachable(store.db, cutoff, new Date());
  assert.equal(await state(), 'unreachable');
  // A heartbeat heals it (and a heartbeat that changes nothing the scheduler reads sends nothing).
  await writeHeartbeats(store.db, [{ hostId: 'g-1', time: new Date(), load: {} }]);
  assert.equal(await state(), 'disconnected', 'reachable again, still without a stream');
  const heard = feed.notices.length;
  await writeHeartbeats(store.db, [{ hostId: 'g-1', time: new Date(), load: { cpuPercent: 5 } }]);
  await planner.fleet.catchUp();
  assert.deepEqual(feed.notices.slice(heard), []);
  // An enrolled host joins the view.
  await insertHosts(store.db, [{ id: 'g-2' }]);
  await planner.fleet.catchUp();
  assert.equal(planner.fleet.view.input('g-2')?.state, 'ready');
  assert.deepEqual(planner.fleet.loads, noGap);
});

/** A feed whose notices are late: held back until someone asks for a barrier. */
function lateFeed(): FleetFeed & { held: string[] } {
  const inner = sessionFleetFeed(() => store.session());
  const held: string[] = [];
  let deliver: (payload: string) => void = () => {};
  return {
    held,
    subscribe: (notice, gap) => {
      deliver = notice;
      return inner.subscribe((payload) => held.push(payload), gap);
    },
    barrier: async () => {
      await inner.barrier();
      for (const payload of held.splice(0)) deliver(payload);
    },
    close: () => inner.close(),
  };
}

test('a fit the view has not heard of yet is found by catching up; an ask that fits nowhere is refused without a whole read', async () => {
  const feed = lateFeed();
  const planner = replica(feed);
  await planner.fleet.ready();
  // Capacity appears (as another replica's release or an enrolment would bring it), and its notice
  // is still on the way when the create that needs it comes.
  await insertHosts(store.db, [{ id: 'x-big', vcpu: 64_000, devices: 4 }]);
  await waitFor(
    'the notice sent',
    () => feed.held.length,
    (n) => n > 0,
  );
  const placed = await createOn(planner, 1, 48_000);
  assert.deepEqual(placed.hostOf, ['x-big']);
  assert.deepEqual(planner.fleet.view.input('x-big')?.allocated?.devices, 1);
  await assert.rejects(createOn(planner, 1, 1_000_000), ResourceExhaustedError);
  assert.deepEqual(planner.fleet.loads, noGap);
});

test('a gap in the feed makes the next plan read the whole fleet', async () => {
  let gap: () => void = () => {};
  const inner = sessionFleetFeed(() => store.session());
  const planner = replica({
    subscribe: (notice, onGap) => {
      gap = onGap;
      return inner.subscribe(notice, onGap);
    },
    barrier: () => inner.barrier(),
    close: () => inner.close(),
  });
  await insertHosts(store.db, [{ id: 'gap-1' }]);
  await createOn(planner, 1);
  assert.deepEqual(planner.fleet.loads, noGap);
  gap();
  await createOn(planner, 1);
  assert.deepEqual(planner.fleet.loads, { ...noGap, gap: 1 });
  await createOn(planner, 1);
  assert.deepEqual(planner.fleet.loads, { ...noGap, gap: 1 }, 'once');
});

// PostgreSQL only: a PGlite session is in-process and is never lost.
const onPostgres = defaultDatabaseKind() === 'postgres';
(onPostgres ? test : () => undefined)(
  'the cluster losing its database session is a gap: after it reconnects the view is read again',
  async () => {
    const cluster = new Cluster({
      db: store.db,
      openSession: () => store.session(),
      replicaId: 'fleet-test',
      logger,
      metrics: createMetrics(),
      clock: systemClock,
      leaderPollMs: 50,
    });
    await cluster.start();
    try {
      const planner = replica(clusterFleetFeed(cluster));
      await planner.fleet.ready();
      await sql`select pg_terminate_backend(pid) from pg_stat_activity
        where datname = current_database() and pid <> pg_backend_pid()
          and (query like 'select pg_try_advisory_lock%' or query like 'listen %')`.execute(store.db);
      await waitFor(
        'the view read again after the reconnect',
        async () => {
          await planner.fleet.ready();
          return planner.fleet.loads.gap;
        },
        (n) => n === 1,
      );
      // And it follows the feed again.
      await insertHosts(store.db, [{ id: 'after-gap' }]);
      await planner.fleet.catchUp();
      assert.equal(planner.fleet.view.input('after-gap')?.state, 'ready');
    } finally {
      await cluster.close();
    }
  },
);
