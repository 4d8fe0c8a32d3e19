import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { waitFor } from '@cphone/proto/testing';
import pino from 'pino';
import { type Clock, ManualClock, systemClock } from '../clock.js';
import { createMetrics } from '../metrics.js';
import { type DatabaseSession, type OpenDatabase, openDatabase } from '../store/database.js';
import { migrateToLatest } from '../store/migrate.js';
import type { Database } from '../store/schema.js';
import { createTestDatabase, defaultDatabaseKind } from '../store/test-database.js';
import { Cluster } from './cluster.js';

type Message = { text: string };

let database: OpenDatabase<Database>;
let dropDatabase: () => Promise<void> = async () => undefined;
const clusters: Cluster<Message>[] = [];

before(async () => {
  if (defaultDatabaseKind() === 'postgres') {
    const scratch = await createTestDatabase({ kind: 'postgres' });
    await scratch.db.destroy();
    database = await openDatabase<Database>({ url: scratch.url });
    dropDatabase = scratch.close;
  } else {
    database = await openDatabase<Database>();
  }
  await migrateToLatest(database.db);
});

after(async () => {
  for (const cluster of clusters) await cluster.close();
  await database.close();
  await dropDatabase();
});

/** A replica whose database sessions the test can cut, as a server restart would. */
function replica(id: string, clock: Clock = systemClock) {
  const sessions: { session: DatabaseSession; lose: (error: Error) => void }[] = [];
  const cluster = new Cluster<Message>({
    db: database.db,
    replicaId: id,
    logger: pino({ level: 'silent' }),
    metrics: createMetrics(),
    clock,
    leaderPollMs: 50,
    relayTtlMs: 60_000,
    async openSession() {
      const session = await database.session();
      let lost: (error: Error) => void = () => undefined;
      sessions.push({
        session,
        lose: (error) => {
          void session.close();
          lost(error);
        },
      });
      return { ...session, onLost: (callback) => (lost = callback) };
    },
  });
  const received: { from: string; text: string }[] = [];
  cluster.onMessage(({ from, message }) => received.push({ from, text: message.text }));
  clusters.push(cluster);
  return { cluster, sessions, received };
}

test('messages reach the replica they name or every other one, large ones through the relay table', async () => {
  const a = replica('msg-a');
  const b = replica('msg-b');
  const c = replica('msg-c');
  await Promise.all([a.cluster.start(), b.cluster.start(), c.cluster.start()]);

  await a.cluster.publish('msg-b', { text: 'for b' });
  await a.cluster.publish(undefined, { text: 'for all' });
  const big = 'x'.repeat(20_000);
  await a.cluster.publish('msg-c', { text: big });
  await waitFor(
    'b and c heard',
    () => [b.received.length, c.received.length],
    ([toB, toC]) => toB === 2 && toC === 2,
  );
  assert.deepEqual(b.received, [
    { from: 'msg-a', text: 'for b' },
    { from: 'msg-a', text: 'for all' },
  ]);
  assert.deepEqual(
    c.received.map((m) => m.text.length),
    ['for all'.length, big.length],
  );
  assert.equal(a.received.length, 0, 'a replica does not hear itself');
  const rows = await database.db.selectFrom('gateway_relay').select('id').execute();
  assert.equal(rows.length, 0, 'the relay row was consumed by the replica it named');
});

test('a publish that waits to be heard resolves only once its own session got the message back', async () => {
  // The publisher's listening session holds what it receives until the test lets it through.
  const held: (() => void)[] = [];
  const a = new Cluster<Message>({
    db: database.db,
    replicaId: 'echo-a',
    logger: pino({ level: 'silent' }),
    metrics: createMetrics(),
    clock: systemClock,
    leaderPollMs: 50,
    async openSession() {
      const session = await database.session();
      return {
        ...session,
        listen: (channel, onPayload) => session.listen(channel, (p) => held.push(() => onPayload(p))),
      };
    },
  });
  clusters.push(a);
  const b = replica('echo-b');
  await Promise.all([a.start(), b.cluster.start()]);
  let resolved = false;
  const waiting = a.publish(undefined, { text: 'heard' }, { heard: 60_000 }).then(() => {
    resolved = true;
  });
  await waitFor(
    'b heard',
    () => b.received.length,
    (n) => n === 1,
  );
  await waitFor(
    'the echo arrived, held',
    () => held.length,
    (n) => n === 1,
  );
  assert.equal(resolved, false, 'not resolved while its own copy is held');
  for (const release of held.splice(0)) release();
  await waiting;
  assert.equal(resolved, true);
  // Without `heard`, a publish resolves once sent.
  await a.publish(undefined, { text: 'sent' });
  await waitFor(
    'b heard both',
    () => b.received.length,
    (n) => n === 2,
  );
});

test('a broadcast relay row stays for every replica until the leader sweeps it', async () => {
  // Relay rows take the database's time; the clock starts at the wall clock so the two agree.
  const clock = new ManualClock();
  const a = replica('sweep-a', clock);
  const b = replica('sweep-b', clock);
  await Promise.all([a.cluster.start(), b.cluster.start()]);
  await a.cluster.publish(undefined, { text: 'y'.repeat(10_000) });
  await waitFor(
    'b heard it',
    () => b.received.length,
    (n) => n === 1,
  );
  const kept = await database.db.selectFrom('gateway_relay').select('id').execute();
  assert.equal(kept.length, 1);
  assert.equal(await a.cluster.sweep(), 0, 'not yet past its time to live');
  clock.advance(120_000);
  assert.equal(await a.cluster.sweep(), 1);
});

test('one replica leads; a lost session steps it down, and it resyncs and listens again once back', async () => {
  const a = replica('lead-a');
  const b = replica('lead-b');
  // Whoever led before in this file has closed; a takes the lock first.
  for (const cluster of clusters.filter((c) => c !== a.cluster && c !== b.cluster)) await cluster.close();
  await a.cluster.start();
  await b.cluster.start();
  assert.equal(a.cluster.isLeader(), true);
  assert.equal(b.cluster.isLeader(), false);
  let resyncs = 0;
  a.cluster.onResync(() => resyncs++);

  a.sessions.at(-1)?.lose(new Error('server restarted'));
  assert.equal(a.cluster.isLeader(), false, 'steps down at once');
  await waitFor(
    'a back',
    () => resyncs,
    (n) => n === 1,
  );
  await waitFor(
    'a leader',
    () => [a.cluster.isLeader(), b.cluster.isLeader()],
    (leads) => leads.includes(true),
  );
  assert.notEqual(a.cluster.isLeader(), b.cluster.isLeader(), 'exactly one leads');
  await b.cluster.publish('lead-a', { text: 'after the loss' });
  await waitFor(
    'a hears again',
    () => a.received.map((m) => m.text),
    (texts) => texts.includes('after the loss'),
  );

  const [leader, follower] = a.cluster.isLeader() ? [a, b] : [b, a];
  await leader.cluster.close();
  await waitFor('the other takes over', () => follower.cluster.isLeader(), Boolean);
});
