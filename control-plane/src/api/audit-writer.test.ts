import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import pino from 'pino';
import { migrateToLatest } from '../store/migrate.js';
import type { Database } from '../store/schema.js';
import { createTestDatabase, type TestDatabase } from '../store/test-database.js';
import { type AuditRow, AuditWriter } from './audit-writer.js';

let store: TestDatabase<Database>;
before(async () => {
  store = await createTestDatabase<Database>({ setup: (db) => migrateToLatest(db).then(() => undefined) });
});
after(() => store?.close());

const row = (method: string, at = new Date(), tenant = 'tnt_audit'): AuditRow => ({
  tenant_id: tenant,
  actor: 'key_1',
  role: 'tenant_admin',
  method,
  resource: 'device_id=dev_1',
  outcome: 'ok',
  detail: '{}',
  create_time: at,
});

const methods = async (tenant = 'tnt_audit') =>
  (
    await store.db
      .selectFrom('audit_log')
      .select('method')
      .where('tenant_id', '=', tenant)
      .orderBy('id')
      .execute()
  ).map((r) => r.method);

test('rows recorded together land in one batch, in the order recorded, with the time of the call', async () => {
  const statements: string[] = [];
  const db = store.db.withPlugin({
    transformQuery: (args) => {
      if (args.node.kind === 'InsertQueryNode') statements.push('insert');
      return args.node;
    },
    transformResult: async (args) => args.result,
  });
  const writer = new AuditWriter({ db, logger: pino({ level: 'silent' }) });
  const at = new Date('2026-01-02T03:04:05.678Z');
  for (let k = 0; k < 50; k++)
    assert.equal(writer.record(row(`M/${k}`, at, 'tnt_batch')), undefined, 'recording does not wait');
  await writer.flush();
  assert.deepEqual(
    await methods('tnt_batch'),
    Array.from({ length: 50 }, (_, k) => `M/${k}`),
  );
  assert.equal(statements.length, 1, 'one insert for the 50 rows');
  const times = await store.db
    .selectFrom('audit_log')
    .select('create_time')
    .where('tenant_id', '=', 'tnt_batch')
    .execute();
  assert.ok(times.every((t) => t.create_time.getTime() === at.getTime()));
});

test('a full queue makes the caller wait until the writer catches up; a failed batch is logged, later ones land', async () => {
  const lines: string[] = [];
  const writer = new AuditWriter({
    db: store.db,
    logger: pino({ level: 'error' }, { write: (line: string) => void lines.push(line) }),
    maxQueued: 3,
    batchRows: 2,
  });
  assert.equal(writer.record(row('A/1')), undefined);
  assert.equal(writer.record(row('A/2')), undefined);
  const waited = writer.record(row('A/3'));
  assert.ok(waited instanceof Promise, 'the third row fills the queue');
  await waited;
  assert.deepEqual(await methods(), ['A/1', 'A/2', 'A/3'], 'every row queued before the wait is written');

  // A row the database refuses (a NUL byte) fails its batch; the writer goes on with the next.
  writer.record({ ...row('B/1'), resource: 'bad\0' });
  await writer.flush();
  writer.record(row('B/2'));
  await writer.flush();
  assert.deepEqual(await methods(), ['A/1', 'A/2', 'A/3', 'B/2']);
  assert.match(lines.join(''), /audit write failed/);
});

test('droppable rows are dropped past half the queue; a target is filed under its owner, else the fallback', async () => {
  const writer = new AuditWriter({ db: store.db, logger: pino({ level: 'silent' }), maxQueued: 4 });
  writer.record(row('D/1', new Date(), 'tnt_drop'));
  writer.record(row('D/2', new Date(), 'tnt_drop'));
  assert.equal(writer.record(row('D/3', new Date(), 'tnt_drop'), { droppable: true }), undefined);
  assert.equal(writer.dropped, 1, 'the queue was half full');
  await writer.flush();
  assert.deepEqual(await methods('tnt_drop'), ['D/1', 'D/2']);

  await store.db
    .insertInto('tenant')
    .values({ id: 'tnt_owner', kind: 'customer', display_name: 'o', update_time: new Date() })
    .execute();
  writer.record(row('T/tenant', new Date(), 'tnt_actor'), {
    target: { type: 'tenant', id: 'tnt_owner', tenantHint: '', fallback: 'tnt_actor' },
  });
  writer.record(row('T/hint', new Date(), 'tnt_actor'), {
    target: { type: 'device', id: 'dev_missing', tenantHint: 'tnt_owner', fallback: 'tnt_actor' },
  });
  writer.record(row('T/none', new Date(), 'tnt_actor'), {
    target: { type: 'device', id: 'dev_missing', tenantHint: 'tnt_made_up', fallback: 'tnt_actor' },
  });
  await writer.flush();
  assert.deepEqual(await methods('tnt_owner'), ['T/tenant', 'T/hint']);
  assert.deepEqual(await methods('tnt_actor'), ['T/none']);
});
