// Statement naming on PostgreSQL (database.ts): PGlite runs each statement in-process and names
// nothing, so this file has tests only where DATABASE_URL names a server.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, test } from 'node:test';
import { type Kysely, sql } from 'kysely';
import pg from 'pg';
import { openDatabase } from './database.js';

const adminUrl = process.env.DATABASE_URL;

if (adminUrl) {
  const name = `cphone_stmt_${randomBytes(4).toString('hex')}`;
  let db: Kysely<Record<string, Record<string, unknown>>>;
  let close: () => Promise<void>;
  const admin = () => new pg.Client({ connectionString: adminUrl });

  before(async () => {
    const client = admin();
    await client.connect();
    await client.query(`create database ${name}`);
    await client.end();
    const url = new URL(adminUrl);
    url.pathname = `/${name}`;
    const open = await openDatabase<Record<string, Record<string, unknown>>>({
      url: url.toString(),
      poolSize: 1,
    });
    db = open.db;
    close = open.close;
    await sql`create table thing (id text primary key, n int)`.execute(db);
    await sql`insert into thing values ('a', 1), ('b', 2)`.execute(db);
  });

  after(async () => {
    await close?.();
    const client = admin();
    await client.connect();
    await client.query(`drop database if exists ${name}`);
    await client.end();
  });

  const prepared = async () =>
    (await sql<{ statement: string }>`select statement from pg_prepared_statements`.execute(db)).rows.map(
      (r) => r.statement,
    );

  test('a parameterized statement is prepared once on its connection and reused', async () => {
    const read = (id: string) => db.selectFrom('thing').select(['id', 'n']).where('id', '=', id);
    assert.deepEqual(await read('a').execute(), [{ id: 'a', n: 1 }]);
    assert.deepEqual(await read('b').execute(), [{ id: 'b', n: 2 }]);
    const text = read('a').compile().sql;
    // One connection in the pool: the statements above and this read share it.
    assert.deepEqual(
      (await prepared()).filter((s) => s === text),
      [text],
      'prepared once, under one name',
    );
  });

  test('a statement whose plan a migration changed is sent again unnamed; the connection names no more', async () => {
    const all = () => db.selectFrom('thing').selectAll().where('id', '=', 'a').execute();
    assert.deepEqual(await all(), [{ id: 'a', n: 1 }]);
    const before = (await prepared()).length;
    // A migration changes the table under the prepared `select *`.
    await sql`alter table thing add column label text default 'x'`.execute(db);
    assert.deepEqual(await all(), [{ id: 'a', n: 1, label: 'x' }]);
    await db.selectFrom('thing').select('n').where('id', '=', 'b').execute();
    assert.equal((await prepared()).length, before, 'nothing new prepared on this connection');
  });

  test('an idle pooled connection the server ends is reported and replaced, and the process carries on', async () => {
    const url = new URL(adminUrl);
    url.pathname = `/${name}`;
    const errors: Error[] = [];
    const open = await openDatabase<Record<string, Record<string, unknown>>>({
      url: url.toString(),
      poolSize: 1,
      onPoolError: (error) => errors.push(error),
    });
    try {
      const pid = async () =>
        (await sql<{ pid: number }>`select pg_backend_pid() as pid`.execute(open.db)).rows[0]?.pid;
      const first = await pid();
      const client = admin();
      await client.connect();
      await client.query('select pg_terminate_backend($1)', [first]);
      await client.end();
      const deadline = Date.now() + 10_000;
      while (errors.length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      assert.equal(errors.length, 1, 'the failed idle connection is reported once');
      assert.match(String(errors[0]?.message), /terminating connection/);
      const second = await pid();
      assert.ok(second !== undefined && second !== first, 'the next query runs on a new connection');
    } finally {
      await open.close();
    }
  });
}
